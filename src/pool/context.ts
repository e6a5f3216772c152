/**
 * The worker context (`ctx`), thread side. One Comlink channel per thread, opened when the thread
 * starts (its port reaches the main thread as a pool `message`), never one per task. A task's
 * `ctx` is one small object over that channel: a handler that never touches it sends nothing.
 *
 * `ctx.signal.aborted` and `ctx.throwIfAborted()` read the hand-off's cancel word in shared
 * memory, so that a synchronous CPU-bound handler sees a cancel no port message could bring it.
 *
 * Not exported from the package: it runs only on worker threads.
 */
import { deserialize, serialize } from 'node:v8';
import { MessageChannel, parentPort, threadId } from 'node:worker_threads';
import { type Remote, wrap } from 'comlink/dist/esm/comlink.mjs';
import { deserializeError, TroupeError } from '../errors.js';
import {
  type AbortNotice,
  type CallResult,
  type ContextHostApi,
  type ContextOp,
  covers,
  isSkipped,
  type SideMessage,
} from './protocol.js';

let host: Remote<ContextHostApi> | undefined;
let cancelWords: Int32Array | undefined;
let skipWords: Int32Array | undefined;
/** Signals with listeners, by lane: the main thread's abort notice fires them. */
const listening = new Map<number, ContextSignal>();

/** Opens the thread's context channel (if `channel`). Called once, when the thread starts. */
export function openContextChannel(cancels: Int32Array, skips: Int32Array, channel: boolean): void {
  cancelWords = cancels;
  skipWords = skips;
  if (parentPort === null || !channel) return;
  const { port1, port2 } = new MessageChannel();
  const hello: SideMessage = { kind: 'troupe:ctx', threadId, port: port2 };
  parentPort.postMessage(hello, [port2]);
  host = wrap<ContextHostApi>(port1 as never);
  port1.on('message', onNotice);
}

function onNotice(data: unknown): void {
  const notice = data as AbortNotice | null;
  if (notice === null || typeof notice !== 'object' || notice.troupe !== 'abort') return;
  const signal = listening.get(notice.l);
  // For that item only: the thread may have moved on to the next item of the lane since.
  if (signal !== undefined && signal.gen === notice.g && signal.item === notice.i) {
    listening.delete(notice.l);
    signal.fire();
  }
}

/** An item ended: its signal's listeners must not fire for the next item of the lane. */
export function releaseSignal(lane: number): void {
  if (listening.size > 0) listening.delete(lane);
}

/**
 * The pool gave up on item `item` of this hand-off: its cancel word covers it (see Lanes.cancel),
 * or its own skip bit is set (see Lanes.skip).
 */
function isCancelled(lane: number, gen: number, item: number): boolean {
  if (cancelWords === undefined || skipWords === undefined) return false;
  return (
    covers(Atomics.load(cancelWords, lane), gen, item) || isSkipped(skipWords, lane, gen, item)
  );
}

function cancelledError(): TroupeError {
  return new TroupeError('E_CANCELLED', 'the task was cancelled (ctx.signal)');
}

/** A listener of `ctx.signal`'s abort (`onabort`, `addEventListener('abort', …)`). */
export type AbortListener = (event: { type: 'abort' }) => void;

/**
 * `ctx.signal`: reads like an `AbortSignal` (`aborted`, `reason`, `throwIfAborted()`,
 * `addEventListener('abort', …)`, `onabort`). `aborted` reads shared memory, so it is true the
 * moment the pool gives up on the task, even inside a synchronous loop; listeners fire when the
 * thread's event loop next runs.
 */
export class ContextSignal {
  readonly lane: number;
  readonly gen: number;
  readonly item: number;
  onabort: AbortListener | null = null;
  #listeners: AbortListener[] = [];
  #fired = false;

  constructor(lane: number, gen: number, item: number) {
    this.lane = lane;
    this.gen = gen;
    this.item = item;
  }

  get aborted(): boolean {
    return this.#fired || isCancelled(this.lane, this.gen, this.item);
  }

  get reason(): TroupeError | undefined {
    return this.aborted ? cancelledError() : undefined;
  }

  throwIfAborted(): void {
    if (this.aborted) throw cancelledError();
  }

  addEventListener(type: string, listener: AbortListener): void {
    if (type !== 'abort' || typeof listener !== 'function') return;
    this.#listeners.push(listener);
    if (this.aborted) {
      queueMicrotask(() => this.fire());
      return;
    }
    listening.set(this.lane, this);
  }

  removeEventListener(type: string, listener: AbortListener): void {
    if (type !== 'abort') return;
    this.#listeners = this.#listeners.filter((l) => l !== listener);
  }

  /** @internal the main thread's abort notice reached this thread. */
  fire(): void {
    if (this.#fired) return;
    this.#fired = true;
    const event = { type: 'abort' as const };
    const listeners = this.onabort === null ? this.#listeners : [...this.#listeners, this.onabort];
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/** Options of `ctx.ask`. */
export interface AskOptions {
  /** How long to wait for the answer, ms. @default the troupe's `askTimeoutMs` */
  timeoutMs?: number;
}

/** The `ctx` a handler receives as its second argument (or third, for `onMessage`). */
export class TaskContext {
  /** `{ id, needs, attempt, runId }` of the subtask, when the task is one. */
  readonly task: Record<string, unknown> | undefined;
  /** Outputs of the subtask's dependencies, by id. */
  readonly deps: Record<string, unknown>;
  /**
   * Where the task sits in the message its thread received: item `index` (from 0) of `size`. The
   * pool batches tasks of a module measured as short; `size` 1 means it came alone.
   */
  get batch(): { readonly index: number; readonly size: number } {
    // Made when read: most handlers never ask, and a context is made per task.
    return Object.freeze({ index: this.#item, size: this.#size });
  }
  readonly #size: number;
  readonly #lane: number;
  readonly #gen: number;
  readonly #item: number;
  #signal: ContextSignal | undefined;
  #progress = -1;

  constructor(
    task: Record<string, unknown> | undefined,
    deps: Record<string, unknown> | undefined,
    lane: number,
    gen: number,
    item: number,
    size: number,
  ) {
    this.task = task;
    this.deps = deps ?? EMPTY;
    this.#size = size;
    this.#lane = lane;
    this.#gen = gen;
    this.#item = item;
  }

  /** Aborted when the task is cancelled or times out (shared memory: visible in a sync loop). */
  get signal(): ContextSignal {
    this.#signal ??= new ContextSignal(this.#lane, this.#gen, this.#item);
    return this.#signal;
  }

  /** Throws `E_CANCELLED` if the task was cancelled: poll it in long synchronous loops. */
  throwIfAborted(): void {
    if (isCancelled(this.#lane, this.#gen, this.#item)) throw cancelledError();
  }

  /** Tells another expert (by name, or `{ skill, level? }`); resolves once it is routed. */
  async send(to: unknown, msg: unknown): Promise<void> {
    await this.#call('send', [to, msg]);
  }

  /** Asks another expert and resolves to its answer (`E_ASK_TIMEOUT`, `E_NO_RECIPIENT`, …). */
  ask<T = unknown>(to: unknown, msg: unknown, options?: AskOptions): Promise<T> {
    return this.#call('ask', [to, msg, options?.timeoutMs]) as Promise<T>;
  }

  /**
   * Reports progress: a fraction from 0 to 1 and an optional note. Only increases are sent
   * (progress is monotonic per subtask); nothing is awaited.
   */
  progress(fraction: number, note?: string): void {
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1)) {
      throw new TroupeError(
        'E_INVALID_OPTION',
        `ctx.progress(fraction): expected a number from 0 to 1, got ${String(fraction)}`,
      );
    }
    if (note !== undefined && typeof note !== 'string') {
      throw new TroupeError(
        'E_INVALID_OPTION',
        `ctx.progress(fraction, note): expected note to be a string, got ${typeof note}`,
      );
    }
    if (fraction <= this.#progress) return;
    this.#progress = fraction;
    this.#call('progress', note === undefined ? [fraction] : [fraction, note]).catch(noop);
  }

  /** Puts a value on the run's blackboard (`E_TOO_LARGE` past the troupe's limit). */
  async share(key: string, value: unknown): Promise<void> {
    if (typeof key !== 'string' || key.length === 0) {
      throw new TroupeError(
        'E_INVALID_OPTION',
        `ctx.share(key): expected a non-empty string, got ${typeof key}`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = serialize(value);
    } catch (error) {
      throw new TroupeError(
        'E_NOT_CLONEABLE',
        `ctx.share("${key}"): the value cannot be cloned: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    await this.#call('share', [key, bytes]);
  }

  /** Reads a value from the run's blackboard: undefined if no one shared it. */
  async lookup<T = unknown>(key: string): Promise<T | undefined> {
    const bytes = await this.#call('lookup', [key]);
    return bytes === undefined ? undefined : (deserialize(bytes as Uint8Array) as T);
  }

  async #call(op: ContextOp, args: unknown[]): Promise<unknown> {
    if (host === undefined) {
      throw new TroupeError(
        'E_NO_RECIPIENT',
        `ctx.${op}: this pool was created with context: false (no context channel)`,
      );
    }
    let result: CallResult;
    try {
      result = await host.call(this.#lane, this.#gen, this.#item, op, args);
    } catch (error) {
      // Comlink could not send the main thread's answer back (it cannot be cloned).
      throw new TroupeError(
        'E_NOT_CLONEABLE',
        `ctx.${op}: the answer cannot be sent to this thread: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
    if (result.ok) return result.v;
    throw deserializeError(result.e);
  }
}

const EMPTY: Record<string, unknown> = Object.freeze({}) as Record<string, unknown>;
const noop = (): void => {};
