/**
 * One folder audit (README's main job) in a fresh process, timed from the first thing each side
 * must do: `node child.js <troupe|ceiling|sequential> <cold|warm|steady> <threads> <max-files>`.
 * Prints one JSON line: {@link Measured}.
 *
 * - troupe: `createTroupe` inside the timing (cold), or a first audit on the same troupe untimed
 *   before the timed one (warm), as `npm start -- --compare-sequential [--warm]` runs it, or
 *   STEADY_AUDITS of them (steady: a long-lived service, once V8 has settled on troupe's code).
 * - ceiling: hand-written worker threads (workloads/tasks-ceiling.js) started inside the timing,
 *   loading the same three handlers and taking the same subtasks from a shared counter, their
 *   results integrated by the same plan; warm: a first untimed pass on the same threads (steady:
 *   as many as troupe's).
 * - sequential: the same handlers one after another on the main thread (loaded inside the
 *   timing when cold), then the same integration.
 */
import { existsSync, readFileSync } from 'node:fs';
import { performance as hooks, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { processThreadsCpuMs, threadCpuMs } from '../cpu.js';
import { workload } from '../paths.js';
import type { Go, Posted, Task } from '../workloads/tasks-ceiling.js';

/** The folder audit of this repository's examples (absent from an installed package). */
export const AUDIT = new URL('../../../examples/folder-audit/plan.mjs', import.meta.url);
/** The folder it audits: this repository's dependencies. */
export const AUDITED = new URL('../../../node_modules/', import.meta.url);

interface Subtask {
  id: string;
  needs: string;
  input: unknown;
}
interface Expert {
  name: string;
  skills: Record<string, number>;
  module: URL;
  /** An expert's check of each output (the hasher has one), on the main thread. */
  validate?: ((output: unknown, input: unknown) => unknown) | undefined;
}
interface AuditPlan {
  analyze: (input: unknown) => Subtask[];
  integrate: (contributions: unknown[], input: unknown) => unknown;
  validate: (result: unknown) => unknown;
}
interface AuditModule {
  experts: Expert[];
  plan: AuditPlan;
  listFiles: (dir: string, bounds: { maxFiles: number }) => { path: string; size: number }[];
}

type Mode = 'troupe' | 'ceiling' | 'sequential';

/**
 * Untimed audits before the steady one: after six in one process, V8's compiling of troupe's
 * code is down to a small part of what the first audit paid (docs/BENCHMARKS.md, "audit").
 */
export const STEADY_AUDITS = 6;

/** Untimed audits before the timed one, by temperature. */
const WARMUPS: Record<string, number> = { cold: 0, warm: 1, steady: STEADY_AUDITS };

async function main(): Promise<void> {
  const [mode, temperature, threadsArg, maxFilesArg] = process.argv.slice(2) as [
    Mode,
    string,
    string,
    string,
  ];
  const warmups = WARMUPS[temperature];
  if (warmups === undefined) throw new Error(`audit child: unknown temperature "${temperature}"`);
  const threads = Number(threadsArg);
  const audit = (await import(AUDIT.href)) as AuditModule;
  const dir = fileURLToPath(AUDITED);
  const files = audit.listFiles(dir, { maxFiles: Number(maxFilesArg) });
  // The page cache warmed once, untimed, as the audit does: no side pays the disk.
  for (const { path } of files) readFileSync(path);
  const input = { dir, files };
  const measure =
    mode === 'troupe'
      ? troupeAudit
      : mode === 'ceiling'
        ? ceilingAudit
        : mode === 'sequential'
          ? sequentialAudit
          : undefined;
  if (measure === undefined) throw new Error(`audit child: unknown mode "${mode}"`);
  const measured = await measure(audit, input, threads, warmups);
  process.stdout.write(`${JSON.stringify(measured)}\n`);
}

export interface Measured {
  wallMs: number;
  /**
   * The main thread's own time on a CPU in the timed audit (bench/cpu.ts), or where the system
   * does not say, its busy time (event-loop utilisation × wall).
   */
  mainMs: number;
  /** Of which in garbage collection. */
  gcMs: number;
  /**
   * Linux only: the CPU time of the threads the side started (its workers), and of the threads
   * the process had before it began (V8's background compiler and garbage-collector helpers,
   * libuv's pool), over the timed audit.
   */
  workersMs?: number | undefined;
  helpersMs?: number | undefined;
  warmMs?: number | undefined;
  parallelism?: number;
  /** The audit's totals (files, bytes, lines, words, gzip, brotli sizes). */
  totals: unknown;
}

async function troupeAudit(
  audit: AuditModule,
  input: unknown,
  threads: number,
  warmups: number,
): Promise<Measured> {
  const { createTroupe } = await import('../../src/index.js');
  const main = mainThread();
  let started = performance.now();
  const troupe = createTroupe({ experts: audit.experts as never, threads });
  const warm = await warmUp(warmups, main, started, async () => {
    const first = await troupe.run(audit.plan as never, input);
    if (first.status !== 'done') throw new Error(`audit child: the warm-up ended ${first.status}`);
  });
  started = warm.started;
  const outcome = await troupe.run(audit.plan as never, input);
  const wallMs = performance.now() - started;
  const busy = main.end();
  await troupe.close();
  if (outcome.status !== 'done')
    throw new Error(`audit child: the audit ended ${outcome.status}: ${outcome.error?.message}`);
  return {
    wallMs,
    ...busy,
    warmMs: warm.warmMs,
    parallelism: outcome.metrics.parallelism,
    totals: (outcome.result as { totals: unknown }).totals,
  };
}

/** Which expert's handler runs a subtask: the first whose skills hold what it needs. */
function assign(audit: AuditModule, subtasks: Subtask[]): number[] {
  return subtasks.map((s) => {
    const at = audit.experts.findIndex((e) => Object.hasOwn(e.skills, s.needs));
    if (at < 0) throw new Error(`audit child: no expert for ${s.needs}`);
    return at;
  });
}

function integrate(
  audit: AuditModule,
  input: unknown,
  subtasks: Subtask[],
  experts: number[],
  outputs: unknown[],
  runMs: number[],
): void {
  const contributions = subtasks.map((s, i) => {
    const expert = audit.experts[experts[i] as number] as Expert;
    // Each output checked as troupe checks it, so that both sides do the same main-thread work.
    const verdict = expert.validate?.(outputs[i], s.input);
    if (verdict !== undefined && verdict !== true)
      throw new Error(`audit child: ${expert.name} rejected the output of ${s.id}: ${verdict}`);
    return {
      subtask: s.id,
      needs: s.needs,
      expert: expert.name,
      output: outputs[i],
      runMs: runMs[i],
    };
  });
  const result = audit.plan.integrate(contributions, input) as { totals: unknown };
  audit.plan.validate(result);
  totals = result.totals;
}

/** The totals of the last audit integrated here: every side must find the same. */
let totals: unknown;

async function ceilingAudit(
  audit: AuditModule,
  input: unknown,
  threads: number,
  warmups: number,
): Promise<Measured> {
  const main = mainThread();
  let started = performance.now();
  const workers = Array.from({ length: threads }, () => new Worker(workload('tasks-ceiling')));
  const modules = audit.experts.map((e) => e.module.href);
  const pass = async (): Promise<number> => {
    const subtasks = audit.plan.analyze(input);
    const experts = assign(audit, subtasks);
    const tasks: Task[] = subtasks.map((s, i) => ({
      module: experts[i] as number,
      input: s.input,
    }));
    const outputs: unknown[] = new Array(tasks.length);
    const runMs: number[] = new Array(tasks.length);
    const counter = new SharedArrayBuffer(4);
    const done = await Promise.all(
      workers.map(
        (worker) =>
          new Promise<number>((resolve, reject) => {
            const onMessage = (message: Posted) => {
              if ('results' in message) {
                for (const [i, output, ms] of message.results) {
                  outputs[i] = output;
                  runMs[i] = ms;
                }
                return;
              }
              worker.off('message', onMessage);
              worker.off('error', reject);
              resolve(message.done);
            };
            worker.on('message', onMessage);
            worker.once('error', reject);
            worker.postMessage({ modules, tasks, counter } satisfies Go);
          }),
      ),
    );
    const total = done.reduce((a, b) => a + b, 0);
    if (total !== tasks.length)
      throw new Error(`audit child: the ceiling ran ${total} of ${tasks.length} subtasks`);
    integrate(audit, input, subtasks, experts, outputs, runMs);
    return runMs.reduce((a, b) => a + b, 0);
  };
  const warm = await warmUp(warmups, main, started, pass);
  started = warm.started;
  const ranMs = await pass();
  const wallMs = performance.now() - started;
  const busy = main.end();
  await Promise.all(workers.map((w) => w.terminate()));
  return { wallMs, ...busy, warmMs: warm.warmMs, parallelism: ranMs / wallMs, totals };
}

async function sequentialAudit(
  audit: AuditModule,
  input: unknown,
  _threads: number,
  warmups: number,
): Promise<Measured> {
  const load = () =>
    Promise.all(
      audit.experts.map(
        async (e) =>
          ((await import(e.module.href)) as { default: (i: unknown) => unknown }).default,
      ),
    );
  const pass = async (handlers: ((i: unknown) => unknown)[]): Promise<void> => {
    const subtasks = audit.plan.analyze(input);
    const experts = assign(audit, subtasks);
    const outputs: unknown[] = [];
    const runMs: number[] = [];
    for (let i = 0; i < subtasks.length; i++) {
      const t0 = performance.now();
      outputs.push(
        await (handlers[experts[i] as number] as (i: unknown) => unknown)(
          (subtasks[i] as Subtask).input,
        ),
      );
      runMs.push(performance.now() - t0);
    }
    integrate(audit, input, subtasks, experts, outputs, runMs);
  };
  const main = mainThread();
  let started = performance.now();
  const handlers = await load();
  const warm = await warmUp(warmups, main, started, () => pass(handlers));
  started = warm.started;
  await pass(handlers);
  const wallMs = performance.now() - started;
  return { wallMs, ...main.end(), warmMs: warm.warmMs, totals };
}

/**
 * `warmups` untimed audits (`pass`), the meter restarted after the last: the first one's time
 * from `started` (what a fresh process pays), and when the timed audit starts.
 */
async function warmUp(
  warmups: number,
  main: ReturnType<typeof mainThread>,
  started: number,
  pass: () => Promise<unknown>,
): Promise<{ warmMs: number | undefined; started: number }> {
  let warmMs: number | undefined;
  for (let i = 0; i < warmups; i++) {
    await pass();
    warmMs ??= performance.now() - started;
  }
  if (warmups === 0) return { warmMs, started };
  main.restart();
  return { warmMs, started: performance.now() };
}

/**
 * What a side costs from now (or the last `restart`) to `end`: the main thread's time on a CPU
 * (or its event loop's busy time) and the GC entries perf_hooks reports; on Linux also the CPU
 * of the threads the side started and of the process's threads from before.
 */
function mainThread(): {
  restart(): void;
  end(): { mainMs: number; gcMs: number; workersMs?: number; helpersMs?: number };
} {
  let gcMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcMs += entry.duration;
  });
  observer.observe({ entryTypes: ['gc'] });
  const drain = () => {
    for (const entry of observer.takeRecords()) gcMs += entry.duration;
  };
  let from = hooks.eventLoopUtilization();
  let cpuFrom = threadCpuMs();
  let gcFrom = 0;
  // The threads the process has before the side starts any: a thread not among them is its.
  let threadsFrom = processThreadsCpuMs();
  const before = new Set(threadsFrom?.keys());
  return {
    restart() {
      drain();
      from = hooks.eventLoopUtilization();
      cpuFrom = threadCpuMs();
      gcFrom = gcMs;
      threadsFrom = processThreadsCpuMs();
    },
    end() {
      const cpu = threadCpuMs();
      const threads = processThreadsCpuMs();
      const busy = hooks.eventLoopUtilization(from).active;
      drain();
      observer.disconnect();
      const mainMs = cpu === undefined || cpuFrom === undefined ? busy : cpu - cpuFrom;
      if (threads === undefined || threadsFrom === undefined)
        return { mainMs, gcMs: gcMs - gcFrom };
      // On Linux the main thread's id is the process's.
      const self = process.pid;
      let workersMs = 0;
      let helpersMs = 0;
      for (const [id, ms] of threads) {
        if (id === self) continue;
        const spent = ms - (threadsFrom.get(id) ?? 0);
        if (before.has(id)) helpersMs += spent;
        else workersMs += spent;
      }
      return { mainMs, gcMs: gcMs - gcFrom, workersMs, helpersMs };
    },
  };
}

/** Whether this is a clone with the audit example in it. */
export const auditAvailable = (): boolean => existsSync(fileURLToPath(AUDIT));

if (process.argv[1] === fileURLToPath(import.meta.url))
  main().catch((error: unknown) => {
    process.stderr.write(
      `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    process.exitCode = 1;
  });
