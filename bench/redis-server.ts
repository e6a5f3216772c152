// A real Redis for the tests and the distributed bench suite: each call starts its own
// `redis-server` (Debian's, `apt-get install -y redis-server`; REDIS_SERVER names another binary)
// on a free loopback port, with persistence off, eviction off (BullMQ needs it) and its working
// files in a fresh temporary folder, waits for it to say it is ready (a handshake on its log, not
// a sleep), and stops it. Nothing is mocked.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RedisServer {
  port: number;
  /** The server's process id (the bench reads its CPU time). */
  pid: number;
  /** redis://127.0.0.1:<port> (rediss:// with TLS), with the password when there is one. */
  url: string;
  /** Stops the server (SIGTERM, then waits for it to exit) and removes its folder. */
  stop(): Promise<void>;
}

const BINARY = process.env.REDIS_SERVER ?? 'redis-server';

/** A port free on 127.0.0.1 now (another process may take it before Redis does: retried). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address !== null
          ? resolve(address.port)
          : reject(new Error('no port')),
      );
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** Starts one server: ready to take connections when this resolves. */
export async function startRedis(
  options: {
    password?: string;
    attempts?: number;
    who?: string;
    /** Serve TLS only (rediss://), with this certificate and key (PEM files). */
    tls?: { cert: string; key: string };
  } = {},
): Promise<RedisServer> {
  const attempts = options.attempts ?? 5;
  const auth = options.password === undefined ? [] : ['--requirepass', options.password];
  const { tls } = options;
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'troupe-redis-'));
    const child = spawn(
      BINARY,
      [
        ...(tls === undefined
          ? ['--port', String(port)]
          : [
              '--port',
              '0',
              '--tls-port',
              String(port),
              '--tls-cert-file',
              tls.cert,
              '--tls-key-file',
              tls.key,
              '--tls-auth-clients',
              'no',
            ]),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        // What BullMQ requires of a Redis it uses: keys are never evicted.
        '--maxmemory-policy',
        'noeviction',
        '--dir',
        dir,
        '--daemonize',
        'no',
        '--loglevel',
        'notice',
        ...auth,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const outcome = await new Promise<'ready' | 'in use' | Error>((resolve) => {
      let log = '';
      const onData = (chunk: Buffer) => {
        log += chunk;
        if (/Ready to accept connections/.test(log)) resolve('ready');
        else if (/Address already in use/.test(log)) resolve('in use');
      };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      child.once('error', (error: NodeJS.ErrnoException) =>
        resolve(
          error.code === 'ENOENT'
            ? new Error(
                `${options.who ?? 'the Redis tests'}: ${BINARY} was not found: apt-get install -y redis-server, or set REDIS_SERVER to another binary (docs/development.md)`,
              )
            : error,
        ),
      );
      child.once('exit', (code) =>
        resolve(
          /Address already in use/.test(log)
            ? 'in use'
            : new Error(`${BINARY} exited (${code}) before it was ready:\n${log}`),
        ),
      );
    });
    if (outcome === 'ready') {
      child.stdout?.resume();
      child.stderr?.resume();
      return {
        port,
        pid: child.pid as number,
        url:
          options.password === undefined
            ? `${tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`
            : `${tls === undefined ? 'redis' : 'rediss'}://:${encodeURIComponent(options.password)}@127.0.0.1:${port}`,
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
          await exited(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    child.kill('SIGKILL');
    await exited(child);
    rmSync(dir, { recursive: true, force: true });
    if (outcome instanceof Error) throw outcome;
    if (attempt >= attempts) throw new Error(`no free port for ${BINARY} after ${attempts} tries`);
  }
}
