// `troupe worker` processes for the Redis executor's tests: real child processes running the
// built CLI, each waited for by a handshake on what it prints (never a sleep), and the
// coordinator-side helpers: a unique prefix per test, a troupe on the Redis executor, a wait
// for a condition polled against Redis itself.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { createTroupe, type RedisExecutorOptions, redisExecutor } from '../../dist/src/index.js';
import type { TroupeOptions } from '../../dist/src/types.js';
// @ts-expect-error: a plain ES module fixture without types
import { experts } from '../fixtures/remote-experts.mjs';

const BIN = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
export const EXPERTS_MODULE = fileURLToPath(
  new URL('../fixtures/remote-experts.mjs', import.meta.url),
);

export interface WorkerProcess {
  child: ChildProcess;
  pid: number;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves with the output once `pattern` appears in it; rejects if it exits first or after `ms`. */
  waitFor(pattern: RegExp, ms?: number): Promise<string>;
  /** Its exit: code and signal. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a worker process; resolves once it says it serves (or rejects with what it printed). */
export async function startWorker(
  url: string,
  args: string[] = [],
  source = EXPERTS_MODULE,
  ready = true,
  env: NodeJS.ProcessEnv = process.env,
): Promise<WorkerProcess> {
  const child = spawn(process.execPath, [BIN, 'worker', source, '--redis', url, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  });
  let text = '';
  const watchers = new Set<() => void>();
  const onData = (chunk: Buffer) => {
    text += chunk;
    for (const watcher of watchers) watcher();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const watcher of watchers) watcher();
    }),
  );
  const worker: WorkerProcess = {
    child,
    pid: child.pid as number,
    output: () => text,
    exited,
    waitFor(pattern, ms = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          watchers.delete(check);
          reject(new Error(`worker: no ${pattern} within ${ms} ms; it printed:\n${text}`));
        }, ms);
        const check = () => {
          if (pattern.test(text)) {
            clearTimeout(timer);
            watchers.delete(check);
            resolve(text);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(timer);
            watchers.delete(check);
            reject(new Error(`worker exited before ${pattern}; it printed:\n${text}`));
          }
        };
        watchers.add(check);
        check();
      });
    },
  };
  if (ready) await worker.waitFor(/: serving /);
  return worker;
}

/** Stops a worker (SIGKILL unless told otherwise) and waits for its exit. */
export async function stopWorker(worker: WorkerProcess, signal: NodeJS.Signals = 'SIGKILL') {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill(signal);
  return worker.exited;
}

let sequence = 0;
/** A prefix no other test uses. */
export function uniquePrefix(): string {
  return `t${process.pid}x${++sequence}`;
}

/** A troupe of the test experts on the Redis executor. */
export function remoteTroupe(
  executor: RedisExecutorOptions,
  options: Omit<TroupeOptions, 'experts' | 'executor'> = {},
) {
  return createTroupe({ experts, executor: redisExecutor(executor), ...options });
}

export { experts };

/** Polls `condition` (each try a Redis round trip or a file read) until it holds, or fails after `ms`. */
export async function until(
  what: string,
  condition: () => Promise<boolean> | boolean,
  ms = 20_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A client of the test's Redis, for looking at queues. */
export function client(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 1 });
}
