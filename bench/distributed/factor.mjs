// The Redis executor against the local pool, on one machine over loopback (issue 17's
// measurements, before `troupe bench --scope distributed` exists):
//   node bench/distributed/factor.mjs [rounds=5] [worker concurrency]
// Starts its own redis-server (Debian's) on a free port and `troupe worker` processes of 1
// thread each; in interleaved rounds it runs the same subtasks on the local pool (2 threads),
// on 1 worker and on 2 workers, and prints per round and as medians [min–max]:
//   - no-op subtasks: wall time per subtask (a run of 400, one expert of concurrency 64);
//   - the factor over sequential (sum of run times ÷ wall) for ~5 ms and ~50 ms CPU subtasks.
// Needs a build (npm run build). Run nothing else meanwhile: both cores are used.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTroupe, redisExecutor } from '../../dist/src/index.js';

const rounds = Number(process.argv[2] ?? 5);
// `node bench/distributed/factor.mjs 5 2`: each worker takes 2 jobs at once (--concurrency).
const concurrency = process.argv[3] === undefined ? [] : ['--concurrency', process.argv[3]];
const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const EXPERTS = fileURLToPath(new URL('./experts.mjs', import.meta.url));
const { experts } = await import('./experts.mjs');

const port = await new Promise((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = s.address().port;
    s.close(() => resolve(p));
  });
});
const dir = mkdtempSync(join(tmpdir(), 'troupe-bench-redis-'));
const redis = spawn(
  'redis-server',
  [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--maxmemory-policy',
    'noeviction',
    '--dir',
    dir,
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
await new Promise((resolve) => {
  let log = '';
  redis.stdout.on('data', (c) => {
    log += c;
    if (/Ready to accept connections/.test(log)) resolve();
  });
});
const url = `redis://127.0.0.1:${port}`;

function startWorker(prefix) {
  const child = spawn(
    process.execPath,
    [BIN, 'worker', EXPERTS, '--redis', url, '--prefix', prefix, '--threads', '1', ...concurrency],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve) => {
    let log = '';
    child.stderr.on('data', (c) => {
      log += c;
      if (/: serving /.test(log)) resolve(child);
    });
  });
}

const prefixes = { one: 'bench1', two: 'bench2' };
const workerProcs = [
  await startWorker(prefixes.one),
  await startWorker(prefixes.two),
  await startWorker(prefixes.two),
];
const setups = {
  local: () => createTroupe({ experts, threads: 2 }),
  '1 worker': () =>
    createTroupe({ experts, executor: redisExecutor({ connection: url, prefix: prefixes.one }) }),
  '2 workers': () =>
    createTroupe({ experts, executor: redisExecutor({ connection: url, prefix: prefixes.two }) }),
};
const troupes = Object.fromEntries(Object.entries(setups).map(([k, make]) => [k, make()]));
for (const t of Object.values(troupes)) await t.probed();

const plan = (n, ms) => ({
  analyze: () =>
    Array.from({ length: n }, (_, i) => ({ id: `s${i}`, needs: 'cpu', input: { ms } })),
});
const cases = [
  { name: 'no-op ×400', n: 400, ms: 0 },
  { name: '~5 ms ×80', n: 80, ms: 5 },
  { name: '~50 ms ×16', n: 16, ms: 50 },
];
// Warm-up: one small run each.
for (const t of Object.values(troupes)) await t.run(plan(20, 1), null);

const results = {};
for (let round = 1; round <= rounds; round++) {
  for (const c of cases) {
    for (const [name, t] of Object.entries(troupes)) {
      const t0 = performance.now();
      const outcome = await t.run(plan(c.n, c.ms), null);
      const wall = performance.now() - t0;
      if (outcome.status !== 'done')
        throw new Error(`${name} ${c.name}: ${outcome.status} ${outcome.error?.message}`);
      const busy = outcome.records.reduce((sum, r) => sum + r.runMs, 0);
      const key = `${c.name} | ${name}`;
      results[key] ??= { perSubtaskMs: [], factor: [] };
      results[key].perSubtaskMs.push(wall / c.n);
      results[key].factor.push(busy / wall);
    }
  }
  process.stderr.write(`round ${round}/${rounds}\n`);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (xs, d = 2) =>
  `${median(xs).toFixed(d)} [${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}]`;
console.log(`node ${process.version}, ${rounds} interleaved rounds, redis-server on loopback`);
console.log('case | executor | wall per subtask, ms | factor over sequential');
for (const [key, r] of Object.entries(results))
  console.log(`${key} | ${fmt(r.perSubtaskMs, 3)} | ${fmt(r.factor)}`);
for (const c of cases.slice(1)) {
  const ratio = results[`${c.name} | 2 workers`].factor.map(
    (f, i) => f / results[`${c.name} | local`].factor[i],
  );
  console.log(`${c.name}: 2 workers ÷ local pool (per round): ${fmt(ratio)}`);
}
for (const t of Object.values(troupes)) await t.close();
for (const w of workerProcs) w.kill('SIGTERM');
await Promise.all(workerProcs.map((w) => new Promise((r) => w.once('exit', r))));
redis.kill('SIGTERM');
await new Promise((r) => redis.once('exit', r));
rmSync(dir, { recursive: true, force: true });
