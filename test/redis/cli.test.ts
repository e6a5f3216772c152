// The command line over Redis: `troupe run <plan> --redis` served by `troupe worker <plan>`
// processes gives the local run's result (a plan whose experts ask, share and report progress
// all the way through), and both commands refuse what they cannot use in one clear line.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../bench/redis-server.js';
import { startWorker, stopWorker, uniquePrefix, type WorkerProcess } from './workers.js';

const exec = promisify(execFile);
const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const PRIMES = fileURLToPath(new URL('../../examples/primes/primes.plan.json', import.meta.url));

let redis: RedisServer;
const workers: WorkerProcess[] = [];
beforeAll(async () => {
  redis = await startRedis();
});
afterEach(async () => {
  await Promise.all(workers.splice(0).map((w) => stopWorker(w)));
});
afterAll(async () => {
  await redis?.stop();
});

/** Runs the CLI; resolves with its exit code and output, whatever the code. */
async function troupe(args: string[], input?: string) {
  const child = exec(process.execPath, [BIN, ...args], { timeout: 60_000 });
  if (input !== undefined) {
    child.child.stdin?.end(input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('troupe run --redis and troupe worker', () => {
  it('a plan served by 2 workers gives the result of a local run', async () => {
    const prefix = uniquePrefix();
    for (let i = 0; i < 2; i++)
      workers.push(await startWorker(redis.url, ['--prefix', prefix, '--threads', '1'], PRIMES));
    const input = JSON.stringify({ limit: 300_000 });
    const remote = await troupe(
      ['run', PRIMES, '--input', '-', '--json', '--redis', redis.url, '--prefix', prefix],
      input,
    );
    const local = await troupe(['run', PRIMES, '--input', '-', '--json', '--threads', '2'], input);
    expect(remote.code, remote.stderr).toBe(0);
    expect(local.code, local.stderr).toBe(0);
    const r = JSON.parse(remote.stdout);
    const l = JSON.parse(local.stdout);
    expect(r.status).toBe('done');
    expect(r.result.primes).toBe(l.result.primes);
    expect(r.result.primes).toBe(25_997);
    expect(r.quality).toEqual(l.quality);
    expect(r.metrics.messages).toBeGreaterThan(0);
    // Each worker says what it serves.
    for (const w of workers) expect(w.output()).toMatch(/serving sieve, hunter, referee/);
  });

  it('refuses an unreachable Redis, a bad URL and local-thread flags in one line', async () => {
    const down = await startRedis();
    const url = down.url.replace('redis://', 'redis://ops:Very-Secret-1@');
    await down.stop();
    const run = await troupe(['run', PRIMES, '--redis', url]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /E_UNAVAILABLE: troupe run: Redis at redis:\/\/ops:\*\*\*@127\.0\.0\.1:\d+\/? cannot be reached/,
    );
    expect(run.stderr + run.stdout).not.toMatch(/Very-Secret-1/);
    const worker = await troupe(['worker', PRIMES, '--redis', url]);
    expect(worker.code).toBe(1);
    expect(worker.stderr).toMatch(/E_UNAVAILABLE: troupe worker: Redis at/);
    expect(worker.stderr).not.toMatch(/Very-Secret-1/);
    const badUrl = await troupe(['worker', PRIMES, '--redis', 'http://ops:Very-Secret-1@x']);
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toMatch(/--redis: expected a redis:\/\/ or rediss:\/\/ URL/);
    expect(badUrl.stderr).not.toMatch(/Very-Secret-1/);
    const noRedis = await troupe(['worker', PRIMES]);
    expect(noRedis.code).toBe(2);
    expect(noRedis.stderr).toMatch(/--redis <url> is required/);
    const threads = await troupe(['run', PRIMES, '--redis', redis.url, '--threads', '2']);
    expect(threads.code).toBe(2);
    expect(threads.stderr).toMatch(/--threads .*with --redis, give it to troupe worker/);
    const prefix = await troupe(['run', PRIMES, '--prefix', 'x']);
    expect(prefix.code).toBe(2);
    expect(prefix.stderr).toMatch(/--prefix is given with --redis only/);
  });
});
