// Where a main thread's time goes on this machine, split into a cost per wake-up, per message and
// per task: troupe's pool alone on 1 thread runs 400 SHA-256 tasks of ~1 ms with a fixed batch of
// 1, 5, 20 and 100 tasks a message, and sits idle for 1 s with its watchdog ticking (10 a second)
// and with it stopped. The main thread's own time on a CPU is read from /proc/thread-self/schedstat
// (Linux only). Medians of 6 rounds after 2 warm-ups.
//
//   npm run build && node bench/ab/main-cpu.mjs
const dist = new URL('../../dist/', import.meta.url);
const { threadCpuMs } = await import(new URL('bench/cpu.js', dist).href);
if (threadCpuMs() === undefined) {
  process.stderr.write(
    'main-cpu: this system does not give a thread its CPU time (/proc/thread-self/schedstat): Linux only\n',
  );
  process.exit(2);
}
const cpu = () => threadCpuMs();
const { createPool } = await import(new URL('src/index.js', dist).href);
const { calibrate } = await import(new URL('bench/shared.js', dist).href);
const sha = new URL('bench/workloads/sha256.js', dist).href;
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
const units = await calibrate(1);
const n = 400;
const rows = [];
for (const batch of [1, 5, 20, 100]) {
  const pool = createPool({ threads: 1, modules: { sha: { url: sha, batch } } });
  const run = () => Promise.all(Array.from({ length: n }, () => pool.run('sha', units)));
  for (let i = 0; i < 2; i++) await run();
  const perTask = [];
  for (let round = 0; round < 6; round++) {
    const before = cpu();
    await run();
    perTask.push(((cpu() - before) * 1000) / n);
  }
  const us = median(perTask);
  rows.push({ batch, usPerTask: us, usPerMessage: us * batch });
  await pool.destroy();
}
const idle = {};
for (const [name, options] of [
  ['watchdog ticking', {}],
  ['watchdog stopped', { watchdogIntervalMs: 3_600_000 }],
]) {
  const pool = createPool({ threads: 1, modules: { sha }, ...options });
  await pool.run('sha', 1);
  const ms = [];
  for (let round = 0; round < 3; round++) {
    const before = cpu();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    ms.push(cpu() - before);
  }
  idle[name] = median(ms);
  await pool.destroy();
}
for (const r of rows)
  console.log(
    `batch ${String(r.batch).padStart(3)}: ${r.usPerTask.toFixed(1)} µs of main-thread CPU a task, ${r.usPerMessage.toFixed(0)} µs a message`,
  );
for (const [name, ms] of Object.entries(idle))
  console.log(`idle 1 s, ${name}: ${ms.toFixed(2)} ms of main-thread CPU`);
