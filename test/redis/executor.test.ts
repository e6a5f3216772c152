// The Redis executor end to end: a coordinator (this process) whose work runs on `troupe worker`
// child processes through BullMQ on the suite's own redis-server. Results match the local
// pool's; errors, retries, quality checks and ctx calls behave as locally; limits and prefixes
// hold; Redis missing or going away ends in E_UNAVAILABLE, never a hang; no password is printed.
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../bench/redis-server.js';
import { createTroupe, isTroupeError, type Troupe } from '../../dist/src/index.js';
import {
  experts,
  remoteTroupe,
  startWorker,
  stopWorker,
  uniquePrefix,
  until,
  type WorkerProcess,
} from './workers.js';

let redis: RedisServer;
const troupes: Troupe[] = [];
const workers: WorkerProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.all(troupes.splice(0).map((t) => t.close({ force: true })));
  await Promise.all(workers.splice(0).map((w) => stopWorker(w)));
});
afterAll(async () => {
  await redis?.stop();
});

async function worker(prefix: string, args: string[] = [], url = redis.url) {
  const w = await startWorker(url, ['--prefix', prefix, '--threads', '1', ...args]);
  workers.push(w);
  return w;
}

function troupe(prefix: string, options: Parameters<typeof remoteTroupe>[1] = {}, extra = {}) {
  const t = remoteTroupe({ connection: redis.url, prefix, ...extra }, options);
  troupes.push(t);
  return t;
}

/** A run of `n` subtasks for `behave`, each input made by `make(i)`. */
function fanOut(n: number, make: (i: number) => unknown, needs = 'work') {
  return {
    analyze: () => Array.from({ length: n }, (_, i) => ({ id: `s${i}`, needs, input: make(i) })),
  };
}

describe('the Redis executor', () => {
  it('gives the local pool’s result, with 2 worker processes sharing the work', async () => {
    const prefix = uniquePrefix();
    const [a, b] = await Promise.all([worker(prefix), worker(prefix)]);
    const plan = fanOut(40, (i) => ({
      op: 'pid',
      ms: 5,
      value: { i, sq: i * i, at: new Date(i) },
    }));
    const remote = await troupe(prefix).run(plan, null);
    const local = createTroupe({ experts, threads: 2 });
    troupes.push(local);
    const here = await local.run(plan, null);
    expect(remote.status).toBe('done');
    expect(here.status).toBe('done');
    if (remote.status !== 'done' || here.status !== 'done') return;
    const values = (result: unknown) =>
      Object.fromEntries(
        Object.entries(result as Record<string, { value: unknown }>).map(([k, v]) => [k, v.value]),
      );
    // Same values (a Date survives the trip: V8's structured clone, as to a thread).
    expect(values(remote.result)).toEqual(values(here.result));
    const pids = new Set(
      Object.values(remote.result as Record<string, { pid: number }>).map((v) => v.pid),
    );
    // Both workers served, and nothing ran in this process.
    expect([...pids].sort()).toEqual([a.pid, b.pid].sort());
    // One record per subtask, each done once, with its run time and a thread lane.
    expect(remote.records).toHaveLength(40);
    for (const record of remote.records) {
      expect(record.status).toBe('done');
      expect(record.attempts).toBe(1);
    }
    // Every job's key (the idempotency key) is unique.
    const keys = Object.values(remote.result as Record<string, { key: string }>).map((v) => v.key);
    expect(new Set(keys).size).toBe(40);
    expect(keys.every((k) => typeof k === 'string' && k.length > 10)).toBe(true);
  });

  it('a job taken ahead goes to a worker with a thread free instead', async () => {
    const prefix = uniquePrefix();
    // Each takes a job ahead of its one thread (the default: 2 × --threads): with two long
    // subtasks, whichever worker takes both gives the second back to the idle one.
    const [a, b] = await Promise.all([worker(prefix), worker(prefix)]);
    const outcome = await troupe(prefix).run(
      fanOut(2, (i) => ({ op: 'pid', ms: 300, value: i })),
      null,
    );
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    const pids = Object.values(outcome.result as Record<string, { pid: number }>).map((v) => v.pid);
    expect(pids.sort()).toEqual([a.pid, b.pid].sort());
  });

  it('brings errors back with their codes, retries across workers, checks quality here', async () => {
    const prefix = uniquePrefix();
    await Promise.all([worker(prefix), worker(prefix)]);
    const t = troupe(prefix, { attempts: 3, retryBackoffMs: 1 });
    const thrown = await t.run(
      fanOut(1, () => ({ op: 'throw', message: 'boom' })),
      null,
    );
    expect(thrown.status).toBe('failed');
    const record = thrown.records[0];
    expect(record?.error?.code).toBe('E_TASK_FAILED');
    expect(record?.error?.message).toMatch(/boom/);
    expect(record?.attempts).toBe(3);
    const retried = await t.run(
      fanOut(1, () => ({ op: 'failUntil', okAt: 3 })),
      null,
    );
    expect(retried.status).toBe('done');
    if (retried.status === 'done') expect(retried.result).toEqual({ s0: { attempt: 3 } });
    const t2 = troupe(prefix, { timeoutMs: 100, attempts: 1 });
    const timedOut = await t2.run(
      fanOut(1, () => ({ op: 'spin', ms: 3_000 })),
      null,
    );
    expect(timedOut.records[0]?.error?.code).toBe('E_TIMEOUT');
    const rejected = await t.run(
      fanOut(1, () => ({ op: 'echo', value: 'bad' }), 'checked'),
      null,
    );
    expect(rejected.records[0]?.error?.code).toBe('E_QUALITY');
    expect(rejected.records[0]?.error?.message).toMatch(/expected "good", got "bad"/);
  });

  it('carries ctx.progress back to the run', async () => {
    const prefix = uniquePrefix();
    await worker(prefix);
    const notes: string[] = [];
    const outcome = await troupe(prefix).run(
      // (It reports, then works a while: a report sent as it returns may come after its end.)
      fanOut(3, () => ({ op: 'logged', file: '/dev/null', ms: 50 })),
      null,
      {
        onEvent: (event) => {
          if (event.type === 'subtask.progress' && event.note !== undefined) notes.push(event.note);
        },
      },
    );
    expect(outcome.status).toBe('done');
    expect(notes.length).toBe(3);
    expect(notes.every((n) => /^started \d+$/.test(n))).toBe(true);
  });

  it('carries messages, heavy handlers and the blackboard across processes', async () => {
    const prefix = uniquePrefix();
    // Both workers serve the asker and its heavy receiver, one taking jobs ahead of its thread:
    // a job it holds must never keep the heavy message from an idle thread while its own thread
    // waits on the ask (the job ahead goes back to its queue; the message goes to the other).
    const [a, b] = await Promise.all([worker(prefix), worker(prefix, ['--concurrency', '3'])]);
    const outcome = await troupe(prefix).run(
      {
        analyze: () => [
          {
            id: 'asks-heavy',
            needs: 'talk',
            input: { op: 'ask', to: 'heavy', msg: { op: 'echo', value: 42 } },
          },
          {
            id: 'board',
            needs: 'talk',
            input: { op: 'shareThenLookup', key: 'k', value: { n: 7 } },
          },
          {
            id: 'tells',
            needs: 'talk',
            input: { op: 'send', to: 'heavy', count: 3, msg: { op: 'echo', value: 0 } },
          },
        ],
      },
      null,
    );
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    const result = outcome.result as Record<string, unknown>;
    // The heavy handler ran on a worker thread and answered the ask; the blackboard kept bytes.
    expect(result['asks-heavy']).toMatchObject({ answer: { echo: 42, from: 'talker' } });
    expect(result.board).toEqual({ value: { n: 7 } });
    expect(result.tells).toBe(3);
    expect(outcome.metrics.messages).toBeGreaterThanOrEqual(4);
    const log = outcome.messageLog;
    // Every message is logged; tells may still be handled when the run ends (as locally).
    expect(log.filter((m) => m.to === 'heavy')).toHaveLength(4);
    expect(log.find((m) => m.kind === 'ask')?.status).toBe('done');
    expect(a.pid).not.toBe(b.pid);
  });

  it('a worker whose thread waits on an ask holds no job it has no thread for', async () => {
    const prefix = uniquePrefix();
    const only = (name: string) => fileURLToPath(new URL(`../fixtures/${name}`, import.meta.url));
    // One worker, one thread, serving the asker and its heavy receiver, taking jobs ahead; and
    // one whose thread counts (so the coordinator sees no deadlock) but that runs no message.
    const [a, other] = await Promise.all([
      worker(prefix, ['--concurrency', '2']),
      startWorker(redis.url, ['--prefix', prefix, '--threads', '1'], only('remote-behave.mjs')),
    ]);
    workers.push(other);
    const ask = (i: number) => ({
      id: `ask${i}`,
      needs: 'talk',
      input: { op: 'ask', to: 'heavy', msg: { op: 'echo', value: i } },
    });
    const run = troupe(prefix).run({ analyze: () => [ask(0), ask(1), ask(2)] }, null);
    // Its thread waits on the ask: the heavy message waits in its queue for a thread (here or on
    // a worker to come), instead of behind the asker on this worker.
    const heavy = new Queue('e.heavy', {
      connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 },
      prefix,
    });
    try {
      await until('the heavy message waits in its queue', async () => {
        const counts = await heavy.getJobCounts('waiting', 'active');
        return counts.waiting === 1 && counts.active === 0;
      });
    } finally {
      await heavy.close();
    }
    const b = await startWorker(
      redis.url,
      ['--prefix', prefix, '--threads', '1'],
      only('remote-heavy.mjs'),
    );
    workers.push(b);
    const outcome = await run;
    expect(outcome.status).toBe('done');
    if (outcome.status !== 'done') return;
    expect(outcome.result).toMatchObject({
      ask0: { answer: { echo: 0 } },
      ask1: { answer: { echo: 1 } },
      ask2: { answer: { echo: 2 } },
    });
    await Promise.all([stopWorker(a, 'SIGTERM'), stopWorker(b, 'SIGTERM')]);
    // Every heavy message ran on the second worker; the first gave back what it took ahead.
    expect(a.output()).toMatch(
      /stopped; served 3 done, 0 failed, 0 skipped(, \d+ given back)?; \d+ probes, 0 messages/,
    );
    expect(b.output()).toMatch(
      /stopped; served 0 done, 0 failed, 0 skipped; \d+ probes, 3 messages/,
    );
  });

  it('refuses an input over maxPayloadBytes, before it is queued, never truncated', async () => {
    const prefix = uniquePrefix();
    await worker(prefix);
    const t = troupe(prefix, { attempts: 1 }, { maxPayloadBytes: 10_000 });
    const small = await t.run(
      fanOut(1, () => ({ op: 'echo', value: 'x'.repeat(100) })),
      null,
    );
    expect(small.status).toBe('done');
    const large = await t.run(
      fanOut(1, () => ({ op: 'echo', value: 'x'.repeat(20_000) })),
      null,
    );
    expect(large.records[0]?.error?.code).toBe('E_TOO_LARGE');
    expect(large.records[0]?.error?.message).toMatch(
      /input is \d+ bytes serialized, over the Redis executor's maxPayloadBytes \(10000\)/,
    );
    // An output over the limit is refused on the worker, and nothing is sent.
    const out = await t.run(
      fanOut(1, () => ({ op: 'big', n: 50_000 })),
      null,
    );
    expect(out.records[0]?.error?.code).toBe('E_TOO_LARGE');
    expect(out.records[0]?.error?.message).toMatch(
      /behave's output is \d+ bytes serialized, over the Redis executor's maxPayloadBytes \(10000\)/,
    );
  });

  it('keeps two prefixes on one Redis apart', async () => {
    const [p1, p2] = [uniquePrefix(), uniquePrefix()];
    const [w1, w2] = await Promise.all([worker(p1), worker(p2)]);
    const [o1, o2] = await Promise.all([
      troupe(p1).run(
        fanOut(10, () => ({ op: 'pid' })),
        null,
      ),
      troupe(p2).run(
        fanOut(10, () => ({ op: 'pid' })),
        null,
      ),
    ]);
    const pidsOf = (o: typeof o1) =>
      new Set(
        Object.values((o as { result: Record<string, { pid: number }> }).result).map((v) => v.pid),
      );
    expect([...pidsOf(o1)]).toEqual([w1.pid]);
    expect([...pidsOf(o2)]).toEqual([w2.pid]);
  });

  it('refuses bad options by name, the password never in the message', () => {
    const bad = [
      [{ connection: 'http://x' }, /connection: expected a redis:\/\/ or rediss:\/\/ URL/],
      [{ connection: 'redis://u:hunter22@' }, /connection/],
      [{ connection: 'redis://127.0.0.1', prefix: 'a:b' }, /prefix/],
      [{ connection: 'redis://127.0.0.1', maxPayloadBytes: 0 }, /maxPayloadBytes/],
      [{ connection: 'redis://127.0.0.1', prefx: 'a' }, /did you mean "prefix"/],
      [{ connection: 'redis://127.0.0.1', tls: 'yes' }, /tls: expected an object of TLS options/],
      [
        {
          connection: 'redis://127.0.0.1',
          tls: new Proxy(
            {},
            {
              ownKeys: () => {
                throw new Error('trap');
              },
            },
          ),
        },
        /redisExecutor\(options\)\.tls/,
      ],
      [
        {
          connection: 'redis://127.0.0.1',
          tls: Object.defineProperty({}, 'ca', {
            enumerable: true,
            get: () => {
              throw new Error('getter');
            },
          }),
        },
        /redisExecutor\(options\)\.tls/,
      ],
    ] as const;
    for (const [options, message] of bad) {
      let caught: unknown;
      try {
        remoteTroupe(options as never);
      } catch (error) {
        caught = error;
      }
      expect(isTroupeError(caught, 'E_INVALID_OPTION')).toBe(true);
      expect((caught as Error).message).toMatch(message);
      expect((caught as Error).message).not.toMatch(/hunter22/);
    }
    // The local pool's options do not go with an executor.
    expect(() => remoteTroupe({ connection: redis.url }, { threads: 2 })).toThrow(
      /options.threads: expected nothing with options.executor/,
    );
  });
});

describe('Redis missing, going away, and passwords', () => {
  it('a worker exits 1 with a clear message when Redis cannot be reached', async () => {
    const down = await startRedis();
    const url = down.url;
    await down.stop();
    const w = await startWorker(
      url.replace('redis://', 'redis://me:s3cret-pw@'),
      [],
      undefined,
      false,
    );
    workers.push(w);
    const { code } = await w.exited;
    expect(code).toBe(1);
    expect(w.output()).toMatch(
      /E_UNAVAILABLE: troupe worker: Redis at redis:\/\/me:\*\*\*@127\.0\.0\.1:\d+\/? cannot be reached/,
    );
    expect(w.output()).not.toMatch(/s3cret-pw/);
  });

  it('a run fails with E_UNAVAILABLE when Redis cannot be reached at start', async () => {
    const down = await startRedis();
    const url = down.url;
    await down.stop();
    const t = remoteTroupe({ connection: url, prefix: uniquePrefix(), unavailableAfterMs: 300 });
    troupes.push(t);
    const outcome = await t.run(
      fanOut(1, () => ({ op: 'echo', value: 1 })),
      null,
    );
    expect(outcome.status).toBe('failed');
    if (outcome.status === 'failed')
      expect(outcome.error.message).toMatch(/E_UNAVAILABLE|cannot be reached/);
  });

  it('Redis going away mid-run fails the run with a cause instead of hanging', async () => {
    const own = await startRedis();
    try {
      const prefix = uniquePrefix();
      await worker(prefix, [], own.url);
      const t = remoteTroupe(
        { connection: own.url, prefix, unavailableAfterMs: 500 },
        { attempts: 2, retryBackoffMs: 1 },
      );
      troupes.push(t);
      let started!: () => void;
      const running = new Promise<void>((resolve) => {
        started = resolve;
      });
      const run = t.run(
        fanOut(2, () => ({ op: 'logged', file: '/dev/null', ms: 60_000 })),
        null,
        {
          onEvent: (event) => {
            if (event.type === 'subtask.progress') started();
          },
        },
      );
      await running;
      await own.stop();
      const outcome = await run;
      expect(outcome.status).toBe('failed');
      const codes = outcome.records.map((r) => r.error?.code);
      expect(codes).toContain('E_UNAVAILABLE');
      const record = outcome.records.find((r) => r.error?.code === 'E_UNAVAILABLE');
      expect(record?.error?.message).toMatch(
        /Redis at redis:\/\/127\.0\.0\.1:\d+\/? cannot be reached/,
      );
    } finally {
      await own.stop();
    }
  });

  it('a password in the URL is in no log line and no error', async () => {
    const password = 'pw-Zebra-9431';
    const locked = await startRedis({ password });
    try {
      const prefix = uniquePrefix();
      const w = await worker(prefix, [], locked.url);
      const t = remoteTroupe({ connection: locked.url, prefix });
      troupes.push(t);
      const outcome = await t.run(
        fanOut(3, () => ({ op: 'pid' })),
        null,
      );
      expect(outcome.status).toBe('done');
      // A wrong password: refused, and neither password is printed.
      const wrong = locked.url.replace(encodeURIComponent(password), 'wrong-Pass-777');
      const refused = await startWorker(wrong, [], undefined, false);
      workers.push(refused);
      expect((await refused.exited).code).toBe(1);
      expect(refused.output()).toMatch(/E_UNAVAILABLE/);
      const t2 = remoteTroupe({ connection: wrong, prefix, unavailableAfterMs: 300 });
      troupes.push(t2);
      const failed = await t2.run(
        fanOut(1, () => ({ op: 'pid' })),
        null,
      );
      expect(failed.status).toBe('failed');
      await stopWorker(w, 'SIGTERM');
      const everything = [
        w.output(),
        refused.output(),
        JSON.stringify(failed),
        JSON.stringify(outcome),
        failed.status === 'failed' ? String(failed.error.stack) : '',
      ].join('\n');
      expect(everything).not.toMatch(new RegExp(password));
      expect(everything).not.toMatch(/wrong-Pass-777/);
      expect(w.output()).toMatch(/redis:\/\/:\*\*\*@127\.0\.0\.1/);
    } finally {
      await locked.stop();
    }
  });
});
