/**
 * What the engine uses of Piscina beyond its documented API: the shapes its load balancer is
 * handed, a signal that makes a task unstackable, and its record of a thread, where an answer
 * that cannot be decoded is heard of.
 */
import { MessagePort } from 'node:worker_threads';
import type { Piscina, queueOptionsSymbol } from 'piscina';

/** Piscina's load balancer: its type is not exported from the package root. */
export type Balancer = NonNullable<
  NonNullable<ConstructorParameters<typeof Piscina>[0]>['loadBalancer']
>;

/** What the balancer reads of a task (Piscina's task interface): its hand-off rides in the slot. */
export interface BalancedTask {
  isAbortable: boolean;
  [queueOptionsSymbol]?: unknown;
}

/** What the balancer reads of a thread (Piscina's `PiscinaWorker`). */
export interface BalancedWorker {
  id: number;
  currentUsage: number;
  isRunningAbortableTask: boolean;
}

/**
 * A signal that never fires: it only makes Piscina treat a task as abortable, which it never
 * stacks on a thread nor stacks anything upon (see Dispatch.handOff).
 */
export const UNSTACKABLE = Object.freeze({
  aborted: false,
  once: () => {},
  off: () => {},
  removeListener: () => {},
});

/**
 * Hears of a thread's answers that cannot be decoded (see Settlement.onLostAnswer), from
 * Piscina's record of the thread (Piscina does not export the symbol that holds it). Piscina
 * reads answers two ways: from its port's 'message' events, where a failed decode is a
 * 'messageerror', and synchronously, with receiveMessageOnPort, once an answer has come
 * (processPendingMessages), where it throws — out of a port listener, so uncaught: that read is
 * wrapped.
 */
export function hearLostAnswers(worker: object, onLost: (error: unknown) => void): void {
  const info = workerInfoOf(worker);
  if (info === undefined) {
    // A Piscina that keeps its record elsewhere: no answer is lost silently — a failed decode
    // is then an uncaught error, which the tests (test/runtime/hostile-values.test.ts) would show.
    return;
  }
  info.port.on('messageerror', onLost);
  const read = info.processPendingMessages;
  if (typeof read !== 'function') return;
  info.processPendingMessages = function readPending(this: unknown, ...args: unknown[]) {
    try {
      return read.apply(this, args);
    } catch (error) {
      // The answers read before this one are settled by promise callbacks not yet run: judge
      // after them, or the one before would be blamed.
      setImmediate(() => onLost(error));
      return undefined;
    }
  };
}

interface WorkerInfo {
  port: MessagePort;
  processPendingMessages?: (...args: unknown[]) => unknown;
}

function workerInfoOf(worker: object): WorkerInfo | undefined {
  for (const symbol of Object.getOwnPropertySymbols(worker)) {
    if (symbol.description !== 'Piscina.kWorkerData') continue;
    const info = (worker as Record<symbol, { port?: unknown } | undefined>)[symbol];
    if (info?.port instanceof MessagePort) return info as WorkerInfo;
  }
  return undefined;
}
