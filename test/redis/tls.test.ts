// Redis over TLS (rediss://): a redis-server that serves TLS only, with a self-signed
// certificate made for the test (openssl, Debian's). The coordinator trusts it through
// redisExecutor's `tls` option; a `troupe worker` through NODE_EXTRA_CA_CERTS (docs/distributed.md).
// Without the certificate, the run fails naming the cause (and no second TLS error of the failed
// handshake goes unheard: that would crash the process, redis/ioredis#1183).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../bench/redis-server.js';
import { EXPERTS_MODULE, remoteTroupe, startWorker, stopWorker, uniquePrefix } from './workers.js';

let dir: string;
let cert: string;
let redis: RedisServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'troupe-tls-'));
  cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'pipe' },
    );
  } catch (error) {
    throw new Error(
      `the TLS test needs openssl to make its certificate (apt-get install -y openssl): ${(error as Error).message}`,
    );
  }
  redis = await startRedis({ tls: { cert, key } });
});
afterAll(async () => {
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const plan = {
  analyze: () => [{ id: 'a', needs: 'work', input: { op: 'pid', value: 1 } }],
};

describe('the Redis executor over TLS', () => {
  it('runs through rediss:// with the tls option and a worker trusting the same CA', async () => {
    expect(redis.url).toMatch(/^rediss:\/\//);
    const prefix = uniquePrefix();
    const worker = await startWorker(
      redis.url,
      ['--prefix', prefix, '--threads', '1'],
      EXPERTS_MODULE,
      true,
      {
        ...process.env,
        NODE_EXTRA_CA_CERTS: cert,
      },
    );
    const t = remoteTroupe({ connection: redis.url, prefix, tls: { ca: readFileSync(cert) } });
    try {
      const outcome = await t.run(plan, null);
      expect(outcome.status).toBe('done');
      if (outcome.status !== 'done') return;
      expect((outcome.result as { a: { pid: number } }).a.pid).toBe(worker.pid);
    } finally {
      await t.close({ force: true });
      await stopWorker(worker, 'SIGTERM');
    }
  });

  it('without the certificate: the run fails naming the cause, the worker exits 1, no crash', async () => {
    const prefix = uniquePrefix();
    const t = remoteTroupe(
      { connection: redis.url, prefix, unavailableAfterMs: 500 },
      { attempts: 1 },
    );
    try {
      const outcome = await t.run(plan, null);
      // Its experts' probes fail E_UNAVAILABLE and retire them: the run fails, saying why.
      expect(outcome.status).toBe('failed');
      const error = outcome.records[0]?.error;
      expect(error?.code).toBe('E_EXPERT_RETIRED');
      expect(error?.message).toMatch(/cannot be reached \(self-signed certificate\)/);
      expect(error?.message.match(/cannot be reached/g)).toHaveLength(1);
    } finally {
      await t.close({ force: true });
    }
    const worker = await startWorker(redis.url, ['--prefix', prefix], EXPERTS_MODULE, false, {
      ...process.env,
      NODE_EXTRA_CA_CERTS: '',
    });
    const { code } = await worker.exited;
    expect(code).toBe(1);
    expect(worker.output()).toMatch(/cannot be reached \(.*certificate/i);
  });
});
