// The Redis executor under the faults of many machines: a worker process SIGKILLed mid-task
// (its job runs again on another worker, the run completes, every subtask settled once and one
// contribution each), a worker SIGTERMed (it finishes what it runs, takes nothing new, exits 0),
// and a cancelled run (nothing of it starts later, on any worker, even one started after).
// What ran where is read from what the handlers themselves wrote (one line per start).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../bench/redis-server.js';
import type { RunEvent, Troupe } from '../../dist/src/index.js';
import {
  remoteTroupe,
  startWorker,
  stopWorker,
  uniquePrefix,
  until,
  type WorkerProcess,
} from './workers.js';

let redis: RedisServer;
let dir: string;
const troupes: Troupe[] = [];
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'troupe-redis-faults-'));
});
afterEach(async () => {
  await Promise.all(troupes.splice(0).map((t) => t.close({ force: true })));
  await Promise.all(workers.splice(0).map((w) => stopWorker(w)));
});
afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

// Short locks, so that a dead worker's job is taken again within about a second.
const FAST_LOCKS = ['--lock-duration', '1000', '--stalled-interval', '300'];

async function worker(prefix: string, args: string[] = []) {
  const w = await startWorker(redis.url, [
    '--prefix',
    prefix,
    '--threads',
    '1',
    '--concurrency',
    '1',
    ...FAST_LOCKS,
    ...args,
  ]);
  workers.push(w);
  return w;
}

function troupe(prefix: string, options: Parameters<typeof remoteTroupe>[1] = {}) {
  const t = remoteTroupe({ connection: redis.url, prefix }, options);
  troupes.push(t);
  return t;
}

interface Start {
  id: string;
  attempt: number;
  key: string;
  pid: number;
  at: number;
}

let files = 0;
function logFile(): string {
  return join(dir, `starts-${++files}.jsonl`);
}

function starts(file: string): Start[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Start);
}

/** A run of `n` logged subtasks of `ms` each, and a promise of the first progress of each pid. */
function logged(n: number, file: string, ms: number) {
  return {
    analyze: () =>
      Array.from({ length: n }, (_, i) => ({
        id: `s${i}`,
        needs: 'work',
        input: { op: 'logged', file, ms, value: i },
      })),
  };
}

/** Resolves with the note of the first progress event that `accept` takes. */
function progressWatch(accept: (note: string) => boolean = () => true) {
  let resolve!: (note: string) => void;
  const seen = new Promise<string>((r) => {
    resolve = r;
  });
  const onEvent = (event: RunEvent) => {
    if (event.type === 'subtask.progress' && event.note !== undefined && accept(event.note))
      resolve(event.note);
  };
  return { seen, onEvent };
}

async function queueCounts(prefix: string) {
  const queue = new Queue('e.behave', {
    connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 },
    prefix,
  });
  try {
    return await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
  } finally {
    await queue.close();
  }
}

describe('the Redis executor under faults', () => {
  it('a worker SIGKILLed mid-task: another runs its job, every subtask settles once', async () => {
    const prefix = uniquePrefix();
    const [a, b] = await Promise.all([worker(prefix), worker(prefix)]);
    const file = logFile();
    const watch = progressWatch();
    const run = troupe(prefix, { attempts: 1 }).run(logged(6, file, 300), null, {
      onEvent: watch.onEvent,
    });
    const note = await watch.seen;
    const victim = Number(/started (\d+)/.exec(note)?.[1]);
    expect([a.pid, b.pid]).toContain(victim);
    const killed = victim === a.pid ? a : b;
    const survivor = victim === a.pid ? b : a;
    const { signal } = await stopWorker(killed, 'SIGKILL');
    expect(signal).toBe('SIGKILL');
    const outcome = await run;
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    // One record per subtask, done on its first attempt (the job ran again, the attempt did not).
    expect(outcome.records.map((r) => [r.id, r.status, r.attempts])).toEqual(
      Array.from({ length: 6 }, (_, i) => [`s${i}`, 'done', 1]),
    );
    // One contribution each: the killed worker's never came, the re-run's was taken once.
    const result = outcome.result as Record<string, { pid: number; value: number }>;
    expect(Object.keys(result).sort()).toEqual(Array.from({ length: 6 }, (_, i) => `s${i}`).sort());
    const killedSubtasks = starts(file).filter((s) => s.pid === killed.pid);
    expect(killedSubtasks.length).toBeGreaterThanOrEqual(1);
    for (const lost of killedSubtasks) {
      // It started again on the survivor, with the same job key (what handlers de-duplicate by).
      const again = starts(file).filter((s) => s.id === lost.id && s.pid === survivor.pid);
      expect(again).toHaveLength(1);
      expect(again[0]?.key).toBe(lost.key);
      expect(again[0]?.attempt).toBe(lost.attempt);
      expect(result[lost.id]?.pid).toBe(survivor.pid);
    }
    const contributions = (outcome as { contributions?: { subtask: string }[] }).contributions;
    if (contributions !== undefined)
      expect(new Set(contributions.map((c) => c.subtask)).size).toBe(contributions.length);
  });

  it('a job whose workers die more than maxStalls times fails E_WORKER_CRASHED, not run again', async () => {
    const prefix = uniquePrefix();
    const [a, b] = await Promise.all([worker(prefix), worker(prefix)]);
    const file = logFile();
    const watch = progressWatch();
    const t = remoteTroupe({ connection: redis.url, prefix, maxStalls: 0 }, { attempts: 1 });
    troupes.push(t);
    const run = t.run(logged(1, file, 60_000), null, { onEvent: watch.onEvent });
    const victim = Number(/started (\d+)/.exec(await watch.seen)?.[1]);
    const killed = victim === a.pid ? a : b;
    await stopWorker(killed, 'SIGKILL');
    // Its lock lapses, the other worker takes the job and claims it: the coordinator counts a
    // stall past maxStalls (0) and ends the attempt instead of letting it run again.
    const outcome = await run;
    expect(outcome.status).toBe('failed');
    const record = outcome.records[0];
    expect(record?.status).toBe('failed');
    expect(record?.error?.code).toBe('E_WORKER_CRASHED');
    expect(record?.error?.message).toMatch(/maxStalls/);
    expect(starts(file).map((s) => s.pid)).toEqual([killed.pid]);
  });

  it('SIGTERM: the worker finishes what it runs, takes nothing new, and exits 0', async () => {
    const prefix = uniquePrefix();
    const first = await worker(prefix);
    const file = logFile();
    const watch = progressWatch();
    const run = troupe(prefix).run(logged(2, file, 800), null, { onEvent: watch.onEvent });
    await watch.seen;
    first.child.kill('SIGTERM');
    await first.waitFor(/SIGTERM: no new jobs/);
    const { code } = await first.exited;
    expect(code).toBe(0);
    expect(first.output()).toMatch(/stopped; served 1 done, 0 failed/);
    // The second subtask waited in Redis; a worker started now serves it.
    const second = await worker(prefix);
    const outcome = await run;
    expect(outcome.status).toBe('done');
    const byPid = starts(file).map((s) => s.pid);
    expect(byPid).toEqual([first.pid, second.pid]);
    const result = (outcome as { result: Record<string, { pid: number; aborted: boolean }> })
      .result;
    expect(Object.values(result).every((r) => r.aborted === false)).toBe(true);
  });

  it('a cancelled run: its running job is aborted and nothing of it starts later', async () => {
    const prefix = uniquePrefix();
    const w = await worker(prefix);
    const file = logFile();
    const watch = progressWatch();
    const controller = new AbortController();
    const run = troupe(prefix).run(logged(10, file, 60_000), null, {
      onEvent: watch.onEvent,
      signal: controller.signal,
    });
    await watch.seen;
    controller.abort();
    const outcome = await run;
    expect(outcome.status).toBe('cancelled');
    expect(outcome.records.filter((r) => r.status === 'cancelled')).toHaveLength(10);
    // Nothing left to run: the queue empties (removed, or claimed and skipped)...
    await until('the queue is empty', async () => {
      const counts = await queueCounts(prefix);
      return Object.values(counts).every((n) => n === 0);
    });
    // ...and a worker that starts now runs nothing of it either.
    const late = await worker(prefix);
    await until('the late worker has looked for work', async () => {
      const counts = await queueCounts(prefix);
      return Object.values(counts).every((n) => n === 0);
    });
    await stopWorker(late, 'SIGTERM');
    await stopWorker(w, 'SIGTERM');
    const all = starts(file);
    expect(all.map((s) => s.id)).toEqual(['s0']);
    expect(all[0]?.pid).toBe(w.pid);
    expect(late.output()).toMatch(/served 0 done, 0 failed/);
  });

  it('a cancel racing the claims of 2 workers: no start after the run ended', async () => {
    const prefix = uniquePrefix();
    await Promise.all([
      worker(prefix, ['--concurrency', '4']),
      worker(prefix, ['--concurrency', '4']),
    ]);
    const file = logFile();
    let seen = 0;
    const controller = new AbortController();
    const run = troupe(prefix).run(logged(80, file, 10), null, {
      signal: controller.signal,
      onEvent: (event) => {
        if (event.type === 'subtask.progress' && ++seen === 12) controller.abort();
      },
    });
    const outcome = await run;
    expect(outcome.status).toBe('cancelled');
    await until('the queue is empty', async () => {
      const counts = await queueCounts(prefix);
      return Object.values(counts).every((n) => n === 0);
    });
    const done = outcome.records.filter((r) => r.status === 'done').length;
    const cancelled = outcome.records.filter((r) => r.status === 'cancelled').length;
    expect(done + cancelled).toBe(80);
    const before = starts(file).length;
    expect(before).toBeLessThan(80);
    // Nothing was left for later: a worker started now runs none of it.
    const late = await worker(prefix);
    await until('the late worker has looked for work', async () => {
      const counts = await queueCounts(prefix);
      return Object.values(counts).every((n) => n === 0);
    });
    await stopWorker(late, 'SIGTERM');
    expect(starts(file).filter((s) => s.pid === late.pid)).toEqual([]);
    expect(starts(file).length).toBe(before);
  });
});
