/**
 * The distributed suite (`--scope distributed`; not part of `all`, since it needs `redis-server`
 * and troupe's optional peers bullmq and ioredis): the Redis executor against the local pool, on
 * one machine over loopback. It starts its own redis-server (persistence off) and `troupe worker`
 * processes of one thread each, and runs the same subtasks in interleaved rounds on the local
 * pool (`threads` threads), on 1 worker, on 2 workers (each taking a job ahead of its thread,
 * the default), and on 2 workers that take none ahead (`--concurrency 1`):
 *
 * - trip: no-op subtasks one after another (an expert of concurrency 1), each subtask's time
 *   from hand-out to result less its run time, median and p99 over every round;
 * - throughput: no-op subtasks all at once, subtasks per second, and the CPU time per subtask of
 *   the coordinator process, of redis-server and of the worker processes: what caps the threads
 *   one coordinator can keep busy (the projection printed with it);
 * - factor: ~5 ms and ~50 ms CPU subtasks, Σ run time ÷ wall, and each setup ÷ the local pool
 *   per round (issue 17's target: 2 workers ≥ 0.9 × the local pool on 50 ms subtasks).
 *
 * On one machine the workers, Redis and the coordinator share its cores: the factors say what
 * the Redis path costs, not what many machines gain (docs/distributed.md, "What it costs").
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { redisExecutor } from '../../src/executors/redis/options.js';
import { createTroupe, type Troupe } from '../../src/troupe.js';
import type { Plan } from '../../src/types.js';
import { experts } from '../distributed/experts.js';
import { interleaved, perRound, type Samples, spread, type Variant } from '../harness.js';
import { type RedisServer, startRedis } from '../redis-server.js';
import { perSecond, range } from '../shared.js';
import type { CaseResult, Comparison, SuiteOptions } from '../types.js';

const BIN = fileURLToPath(new URL('../../src/cli/bin.js', import.meta.url));
const EXPERTS = fileURLToPath(new URL('../distributed/experts.js', import.meta.url));

/** A setup: where its troupe's work runs. */
interface Setup {
  name: string;
  troupe: Troupe;
  /** Its worker processes (none for the local pool). */
  workers: ChildProcess[];
}

/** CPU time a process used so far, ms, from /proc (Linux); undefined elsewhere. */
function cpuOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // Fields 14 and 15 (utime, stime), in clock ticks, after the command's parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return undefined;
  }
}

function startWorker(url: string, prefix: string, extra: string[]): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [BIN, 'worker', EXPERTS, '--redis', url, '--prefix', prefix, '--threads', '1', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return new Promise((resolve, reject) => {
    let log = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      log += chunk;
      if (/: serving /.test(log)) {
        child.stderr?.resume();
        resolve(child);
      }
    });
    child.once('exit', (code) =>
      reject(new Error(`troupe worker exited (${code}) before it served:\n${log}`)),
    );
  });
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }
  });
}

const fanOut = (n: number, needs: string, ms: number): Plan<unknown> => ({
  analyze: () => range(n).map((i) => ({ id: `s${i}`, needs, input: { ms } })),
});

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export async function distributedSuite(options: SuiteOptions): Promise<CaseResult[]> {
  const { rounds, quick, threads } = options;
  // The optional peers, named plainly when missing (redisExecutor would say it too, later).
  const require = createRequire(import.meta.url);
  for (const peer of ['bullmq', 'ioredis'])
    try {
      require.resolve(peer);
    } catch {
      throw new Error(
        `--scope distributed needs troupe's optional peer ${peer}: npm install ${peer}`,
      );
    }
  const redis: RedisServer = await startRedis({ who: 'troupe bench --scope distributed' });
  const setups: Setup[] = [];
  try {
    setups.push({ name: 'local pool', troupe: createTroupe({ experts, threads }), workers: [] });
    const remote = async (name: string, prefix: string, count: number, extra: string[] = []) => {
      const workers = await Promise.all(
        range(count).map(() => startWorker(redis.url, prefix, extra)),
      );
      const troupe = createTroupe({
        experts,
        executor: redisExecutor({ connection: redis.url, prefix, threads: count }),
      });
      setups.push({ name, troupe, workers });
    };
    await remote('1 worker', 'bench1', 1);
    await remote('2 workers', 'bench2', 2);
    await remote('2 workers, none ahead', 'bench2n', 2, ['--concurrency', '1']);
    for (const s of setups) await s.troupe.probed();
    return [
      await tripCase(setups, rounds, quick ? 50 : 200),
      await throughputWithCpu(setups, rounds, quick ? 100 : 400, redis.pid),
      await factorCase(setups, rounds, 5, quick ? 20 : 80, 'local pool'),
      await factorCase(setups, rounds, 50, quick ? 4 : 16, 'local pool', 0.9),
    ];
  } finally {
    await Promise.all(setups.map((s) => s.troupe.close({ force: true })));
    await Promise.all(setups.flatMap((s) => s.workers.map(stop)));
    await redis.stop();
  }
}

/** Runs a plan, failing the suite if the run did not end done. */
async function runAll(setup: Setup, plan: Plan<unknown>) {
  const outcome = await setup.troupe.run(plan, null);
  if (outcome.status !== 'done')
    throw new Error(`${setup.name}: the run ended ${outcome.status}: ${outcome.error?.message}`);
  return outcome;
}

async function tripCase(setups: Setup[], rounds: number, n: number): Promise<CaseResult> {
  // Per setup: every subtask's trip, and each round's median.
  const trips = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  const perRoundMedian = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  const samples = await interleaved(
    setups.map<Variant>((s) => ({
      name: s.name,
      run: async () => {
        const outcome = await runAll(s, fanOut(n, 'one', 0));
        const round: number[] = [];
        for (const r of outcome.records)
          if (r.startedAtMs !== undefined) round.push(r.endedAtMs - r.startedAtMs - r.runMs);
        (trips.get(s.name) as number[]).push(...round);
        (perRoundMedian.get(s.name) as number[]).push(spread(round).median);
      },
    })),
    rounds,
  );
  const medians: Record<string, number> = {};
  for (const s of setups) {
    const all = trips.get(s.name) as number[];
    medians[`${s.name}, median`] = spread(all).median;
    medians[`${s.name}, p99`] = quantile(all, 0.99);
  }
  return {
    name: `trip of a no-op subtask, one at a time ×${n}: hand-out to result less run time, ms (over every subtask of every round)`,
    medians,
    comparisons: setups.map((s) => ({
      label: `${s.name}: each round's median trip, ms`,
      spread: spread(perRoundMedian.get(s.name) as number[]),
      digits: 3,
    })),
    samples,
  };
}

async function throughputWithCpu(
  setups: Setup[],
  rounds: number,
  n: number,
  redisPid: number,
): Promise<CaseResult> {
  // CPU per subtask on the Redis path: the coordinator (this process: with a Redis executor it
  // runs no thread of work), redis-server and the workers, over the 2 workers' rounds.
  const subject = setups.find((s) => s.name === '2 workers') as Setup;
  const cpu = { coordinator: 0, redis: 0, workers: 0, subtasks: 0 };
  let measured = true;
  const samples = await interleaved(
    setups.map<Variant>((s) => ({
      name: s.name,
      run: async () => {
        if (s !== subject) {
          await runAll(s, fanOut(n, 'cpu', 0));
          return;
        }
        const before = process.cpuUsage();
        const redisBefore = cpuOf(redisPid);
        const workersBefore = s.workers.map((w) => cpuOf(w.pid));
        await runAll(s, fanOut(n, 'cpu', 0));
        const used = process.cpuUsage(before);
        cpu.coordinator += (used.user + used.system) / 1000;
        const redisAfter = cpuOf(redisPid);
        const workersAfter = s.workers.map((w) => cpuOf(w.pid));
        if (redisBefore === undefined || redisAfter === undefined) measured = false;
        else cpu.redis += redisAfter - redisBefore;
        workersAfter.forEach((after, i) => {
          const was = workersBefore[i];
          if (after === undefined || was === undefined) measured = false;
          else cpu.workers += after - was;
        });
        cpu.subtasks += n;
      },
    })),
    rounds,
  );
  const local = samples['local pool'] as number[];
  const comparisons: Comparison[] = setups
    .filter((s) => s.name !== 'local pool')
    .map((s) => ({
      label: `${s.name} ÷ local pool, subtasks per second`,
      spread: perRound(samples[s.name] as number[], local, (x, base) => base / x),
      digits: 3,
    }));
  const per = (ms: number) => ms / cpu.subtasks;
  const coordinator = per(cpu.coordinator);
  const notes = [
    `CPU per no-op subtask on 2 workers: coordinator ${coordinator.toFixed(3)} ms, ` +
      (measured
        ? `redis-server ${per(cpu.redis).toFixed(3)} ms, workers ${per(cpu.workers).toFixed(3)} ms (all of them; /proc, 10 ms ticks)`
        : 'redis-server and workers not measured (no /proc on this system)'),
  ];
  // A coordinator hands out at most 1 ÷ c subtasks per ms of its own CPU, so it keeps at most
  // T ÷ c threads busy on subtasks of T ms (Little's law); redis-server, one thread, caps the same
  // way at T ÷ r. The smaller cap is what more machines cannot pass.
  const cap = measured ? Math.max(coordinator, per(cpu.redis)) : coordinator;
  notes.push(
    `threads one coordinator can keep busy (T ÷ ${measured ? 'max(coordinator, redis-server) CPU' : 'coordinator CPU'} per subtask): ` +
      [1, 5, 50].map((t) => `${t} ms subtasks ≈ ${Math.floor(t / cap)}`).join(', '),
  );
  return {
    name: `throughput, no-op subtasks ×${n} at once (subtasks per second)`,
    medians: perSecond(samples, n),
    comparisons,
    samples,
    notes,
  };
}

async function factorCase(
  setups: Setup[],
  rounds: number,
  ms: number,
  n: number,
  baseline: string,
  target?: number,
): Promise<CaseResult> {
  const factors = new Map<string, number[]>(setups.map((s) => [s.name, []]));
  const samples: Samples = await interleaved(
    setups.map<Variant>((s) => ({
      name: s.name,
      run: async () => {
        const t0 = performance.now();
        const outcome = await runAll(s, fanOut(n, 'cpu', ms));
        const wall = performance.now() - t0;
        const busy = outcome.records.reduce((sum, r) => sum + r.runMs, 0);
        (factors.get(s.name) as number[]).push(busy / wall);
      },
    })),
    rounds,
  );
  const base = factors.get(baseline) as number[];
  const comparisons: Comparison[] = setups
    .filter((s) => s.name !== baseline)
    .map((s) => {
      const c: Comparison = {
        label: `${s.name} ÷ ${baseline}, factor`,
        spread: perRound(factors.get(s.name) as number[], base, (x, b) => x / b),
      };
      if (target !== undefined && s.name === '2 workers') {
        c.target = `≥ ${target}`;
        c.pass = c.spread.median >= target;
      }
      return c;
    });
  return {
    name: `factor over sequential, ~${ms} ms CPU subtasks ×${n} (Σ run time ÷ wall)`,
    medians: Object.fromEntries(
      setups.map((s) => [s.name, spread(factors.get(s.name) as number[]).median]),
    ),
    comparisons,
    samples,
  };
}
