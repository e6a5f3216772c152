// redisWorker(): a worker embedded in a service, from the library. It serves a troupe on the
// same Redis as `troupe worker` does (here the coordinator is this process too), stops with
// close(), and refuses bad options by name before it connects.
import { serialize } from 'node:v8';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../bench/redis-server.js';
import { isTroupeError, redisWorker } from '../../dist/src/index.js';
import { client, experts, remoteTroupe, uniquePrefix, until } from './workers.js';

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis();
});
afterAll(async () => {
  await redis?.stop();
});

async function refusal(options: unknown): Promise<Error> {
  try {
    await redisWorker(options as never);
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
}

describe('redisWorker', () => {
  it('serves a troupe from this process, then closes after what it runs', async () => {
    const prefix = uniquePrefix();
    const lines: string[] = [];
    const worker = await redisWorker({
      connection: redis.url,
      prefix,
      experts,
      threads: 1,
      log: (line) => lines.push(line),
    });
    const t = remoteTroupe({ connection: redis.url, prefix });
    try {
      const outcome = await t.run(
        {
          analyze: () =>
            Array.from({ length: 6 }, (_, i) => ({
              id: `s${i}`,
              needs: 'work',
              input: { op: 'pid', ms: 2, value: i },
            })),
        },
        null,
      );
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      const result = outcome.result as Record<string, { pid: number; value: number }>;
      expect(Object.values(result).every((r) => r.pid === process.pid)).toBe(true);
      expect(worker.served.done).toBe(6);
    } finally {
      await t.close();
    }
    expect(await worker.close(5_000)).toEqual({ drained: true });
    expect(lines[0]).toMatch(/: serving behave, strict, talker, heavy from redis:\/\/127\.0\.0\.1/);
  });

  it('waits on a late answer while the coordinator beats, drops the job once it is gone', async () => {
    const prefix = uniquePrefix();
    const worker = await redisWorker({ connection: redis.url, prefix, experts, threads: 1 });
    // A job as a coordinator would have left it that beats but does not answer (its event loop
    // held up), then stops beating (gone).
    const queue = new Queue('e.behave', {
      connection: { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: 1 },
      prefix,
    });
    const beats = client(redis.url);
    await beats.hset(`${prefix}:_:coordinators`, 'gone', String(Date.now() + 60_000));
    try {
      const payload = serialize({ kind: 'run', input: { op: 'pid', value: 1 } }).toString('base64');
      await queue.add(
        'run',
        { c: 'gone', p: payload, l: 1024 },
        { jobId: 'gone.1', removeOnComplete: true },
      );
      // Past the claim's 10 s it still holds the job, since its coordinator beats. (What is
      // shown is that nothing happens for a while: only time passing can show it.)
      await until(
        'the job is taken',
        async () => (await queue.getJobCounts('active')).active === 1,
      );
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      expect(worker.served.skipped).toBe(0);
      expect((await queue.getJobCounts('active')).active).toBe(1);
      await beats.hdel(`${prefix}:_:coordinators`, 'gone');
      await until(
        'the job is skipped and leaves its queue',
        async () => {
          const counts = await queue.getJobCounts('waiting', 'active');
          return worker.served.skipped === 1 && (counts.waiting ?? 0) + (counts.active ?? 0) === 0;
        },
        20_000,
      );
      expect(worker.served.done + worker.served.failed).toBe(0);
    } finally {
      beats.disconnect();
      await queue.close();
      await worker.close(1_000);
    }
  }, 45_000);

  it('refuses bad options by name, before it connects', async () => {
    const base = { connection: redis.url, experts };
    const cases: [unknown, RegExp][] = [
      [{ ...base, thread: 2 }, /thread.*did you mean "threads"/],
      [{ ...base, experts: [] }, /redisWorker\(options\)\.experts: expected a non-empty array/],
      [
        {
          ...base,
          experts: new Proxy([experts[0]], {
            get() {
              throw new Error('trap');
            },
          }),
        },
        /redisWorker\(options\)\.experts/,
      ],
      [{ ...base, experts: [{ name: 'x' }] }, /redisWorker\(options\)\.experts\[0\]/],
      [
        { ...base, experts: [experts[0], experts[0]] },
        /experts\[1\]\.name: expected a name no other/,
      ],
      [{ ...base, threads: 0 }, /redisWorker\(options\)\.threads: expected an integer from 1/],
      [{ ...base, concurrency: 1.5 }, /redisWorker\(options\)\.concurrency/],
      [{ ...base, lockDurationMs: 10 }, /redisWorker\(options\)\.lockDurationMs/],
      [{ ...base, log: 'yes' }, /redisWorker\(options\)\.log: expected a function/],
      [{ ...base, connection: 'http://x' }, /redisWorker\(options\)\.connection/],
      [null, /redisWorker\(options\)/],
    ];
    for (const [options, message] of cases) {
      const error = await refusal(options);
      expect(isTroupeError(error, 'E_INVALID_OPTION'), String(error)).toBe(true);
      expect(error.message).toMatch(message);
    }
  });

  it('rejects E_UNAVAILABLE when Redis cannot be reached, with no password in it', async () => {
    const error = await refusal({
      connection: 'redis://:hunter2@127.0.0.1:1',
      experts,
      threads: 1,
    });
    expect(isTroupeError(error, 'E_UNAVAILABLE')).toBe(true);
    expect(error.message).toMatch(/redis:\/\/:\*\*\*@127\.0\.0\.1:1/);
    expect(error.message).not.toMatch(/hunter2/);
  });
});
