/**
 * The main ↔ worker protocol: what the pool sends a thread, what comes back, and the layout of
 * the shared lanes through which a thread says what it is doing without a message.
 *
 * The keys of what crosses per task are short: a structured clone writes every key of every
 * object it sends, once per item of a batch for results. What they stand for:
 *
 * | message                        | key      | stands for                                      |
 * | ------------------------------ | -------- | ----------------------------------------------- |
 * | TaskMessage (main → thread)    | `k`      | kind: run, message, probe, ping                 |
 * |                                | `m`      | module name                                     |
 * |                                | `l`, `g` | lane, generation                                |
 * |                                | `i`      | inputs, one per item                            |
 * |                                | `c`      | contexts, one per item                          |
 * |                                | `t`, `d` | task columns, deps per item                     |
 * | TaskColumns (in `t`)           | `s`, `v` | the value every item shares, a value per item   |
 * | TaskResponse (thread → main)   | `r`      | results, one per item                           |
 * |                                | `th`     | thread id                                       |
 * | ItemResult (in `r`)            | `ok`     | succeeded                                       |
 * |                                | `v`      | value (the output)                              |
 * |                                | `e`      | error (a WireError)                             |
 * |                                | `ms`     | run time                                        |
 * | AbortNotice (main → thread)    | `l`, `g` | lane, generation                                |
 * |                                | `i`      | item (not inputs, as in TaskMessage)            |
 * | CallResult (main → thread)     | `ok`     | succeeded                                       |
 * |                                | `v`, `e` | value, error (a WireError)                      |
 *
 * What crosses once per thread or on a failure (WorkerBoot, SideMessage) has named fields.
 */
import * as types from 'node:util/types';
import type { MessagePort } from 'node:worker_threads';
import type { WireError } from '../errors.js';

/** Data a worker thread boots with (Piscina's `workerData`). */
export interface WorkerBoot {
  /** Registered modules: name → file URL. A task names a module; it never carries a path. */
  modules: Record<string, string>;
  /**
   * Lanes, one per hand-off slot: Int32 state words (see {@link laneWord}), then the Int32 thread
   * id of the thread that took the slot, then Int32 cancel words (`laneWord(gen, k)`: the pool
   * gave up on the hand-off's items from k on: those not yet started are skipped, and a running
   * one's `ctx.signal` reads aborted), then Int32 limit words
   * (`laneWord(gen, k)`: the pool took back the batch's items from k on; the thread stops there).
   */
  laneState: SharedArrayBuffer;
  /** Lane start stamps (Float64, ms since the pool's epoch), one per slot. */
  laneTime: SharedArrayBuffer;
  /**
   * Per-item skip words, SKIP_WORDS Int32 per lane (see {@link isSkipped}): the pool settled
   * these items of the hand-off on the main thread (a cancel), so the thread must not begin them,
   * and a running one's `ctx.signal` reads aborted.
   */
  laneSkip: SharedArrayBuffer;
  /** The pool's epoch, `performance.timeOrigin + performance.now()` at creation. */
  epoch: number;
  /** How long loading one module may take on a thread. */
  moduleLoadTimeoutMs: number;
  /** What an output may weigh (see `payloadBytes`); 0: no limit. */
  maxOutputBytes: number;
  /** Open the context channel (see `context.ts`). */
  context: boolean;
  /** How long an idle thread spins before it sleeps (see `spinningWait` in spin.ts). */
  idleSpinMs: number;
  /**
   * Int32 slots, one per thread id modulo their count: the pool writes a thread's id into its
   * slot before it terminates that thread, which then never sleeps again (see `exitIfDoomed`).
   */
  doomed: SharedArrayBuffer;
}

/** Context a task carries to its handler (`ctx.task`, `ctx.deps`). */
export interface TaskContextData {
  task?: Record<string, unknown>;
  deps?: Record<string, unknown>;
}

/** What a heavy message handler receives: `onMessage(msg, from, ctx)` on a thread. */
export interface MessageInput {
  msg: unknown;
  from: string;
}

/** One task, or a batch of tasks of one module, handed to one thread. */
export interface TaskMessage {
  /**
   * Kind: run (the default export), message (the `onMessage` export, inputs are
   * {@link MessageInput}s), probe, or ping (a no-op that only makes Piscina start a thread).
   */
  k: 'run' | 'message' | 'probe' | 'ping';
  /** Registered module name. */
  m: string;
  /** Hand-off slot (lane index). */
  l: number;
  /** Generation of the slot for this hand-off. */
  g: number;
  /** Inputs: one per item (a batch has several). */
  i: unknown[];
  /** Per-item context data, parallel to `i` (absent when no item has any, or when `t` has it). */
  c?: (TaskContextData | undefined)[] | undefined;
  /**
   * Every item's `task`, column by column, when they all have one with the same fields: per
   * field, the one value every item shares (`s`) or a value per item (`v`). A batch's tasks
   * share most fields (run, skill, attempt), and a few arrays cost far less to clone than an
   * object per item.
   */
  t?: TaskColumns | undefined;
  /** Per-item `deps`, parallel to `i`, when `t` carries the tasks (absent when none has any). */
  d?: (Record<string, unknown> | undefined)[] | undefined;
}

/** See {@link TaskMessage.t}. */
export type TaskColumns = Record<string, { s: unknown } | { v: unknown[] }>;

/**
 * Packs the items' context into a message: as columns (`t`, `d`) when every item has a `task`
 * that is a plain object with the same fields, else an object per item (`c`). Nothing when no
 * item has any. Never throws.
 */
export function packContexts(
  message: TaskMessage,
  contexts: readonly (TaskContextData | undefined)[],
): void {
  try {
    if (packColumns(message, contexts)) return;
  } catch {
    // A getter that throws, say: sent as it is, it fails where any uncloneable context fails.
  }
  if (contexts.some((context) => context !== undefined))
    message.c = contexts as (TaskContextData | undefined)[];
}

/** Columns, if every item has a plain-object `task` with the same fields; false if not. */
function packColumns(
  message: TaskMessage,
  contexts: readonly (TaskContextData | undefined)[],
): boolean {
  const first = contexts[0]?.task;
  if (!isPlainObject(first)) return false;
  const keys = Object.keys(first);
  if (keys.includes('__proto__')) return false;
  let anyDeps = false;
  for (const context of contexts) {
    if (context === undefined || !isPlainObject(context.task) || !sameKeys(context.task, keys))
      return false;
    if (context.deps !== undefined) anyDeps = true;
  }
  const tasks = contexts.map((context) => (context as TaskContextData).task) as Record<
    string,
    unknown
  >[];
  const columns: TaskColumns = {};
  for (const key of keys) {
    const shared = first[key];
    // Object.is: 0 and -0 are told apart, as a clone of each item's own object would.
    const same = tasks.every((task) => Object.is(task[key], shared));
    columns[key] = same ? { s: shared } : { v: tasks.map((task) => task[key]) };
  }
  const deps = anyDeps ? contexts.map((context) => context?.deps) : undefined;
  message.t = columns;
  if (deps !== undefined) message.d = deps;
  return true;
}

/** An object whose prototype is Object's (or none): what a column can stand for. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  // Not a proxy either: copied out field by field it would clone where the proxy itself cannot.
  if (value === null || typeof value !== 'object' || types.isProxy(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Item `index`'s context, whichever way {@link packContexts} packed it. */
export function unpackContext(message: TaskMessage, index: number): TaskContextData | undefined {
  const columns = message.t;
  if (columns === undefined) return message.c?.[index];
  const task: Record<string, unknown> = {};
  for (const key in columns) {
    const column = columns[key] as { s: unknown } | { v: unknown[] };
    task[key] = 'v' in column ? column.v[index] : column.s;
  }
  const deps = message.d?.[index];
  return deps === undefined ? { task } : { task, deps };
}

function sameKeys(task: Record<string, unknown>, keys: string[]): boolean {
  let count = 0;
  for (const key in task) {
    if (keys[count] !== key) return false;
    count++;
  }
  return count === keys.length;
}

/** The settlement of one item. */
export type ItemResult =
  | { ok: true; v: unknown; ms: number }
  | { ok: false; e: WireError; ms: number; code: ItemFailureCode };

/**
 * How an item failed on the thread: the handler threw, its module did not load, its probe failed,
 * it was skipped because the pool had given up on its hand-off (the pool settled it already), or
 * it was not begun because the pool took it back from the batch (`E_TRIMMED`: it runs elsewhere).
 */
export type ItemFailureCode =
  | 'E_TASK_FAILED'
  | 'E_TOO_LARGE'
  | 'E_MODULE_LOAD'
  | 'E_PROBE_FAILED'
  | 'E_CANCELLED'
  | 'E_TRIMMED';

/** What a thread answers for one {@link TaskMessage}. */
export interface TaskResponse {
  /** One result per item, in order. */
  r: ItemResult[];
  /** The thread that ran it. */
  th: number;
  /**
   * Errors thrown on this thread outside the task that caused them (a timer left behind by an
   * earlier task): never charged to a task; the thread is replaced after answering.
   */
  stray?: WireError[] | undefined;
  /** The thread saw an uncaught error and must be replaced once this answer is in. */
  recycle?: boolean | undefined;
}

/** A message a thread posts outside any task (Piscina re-emits it as the pool's `message`). */
export type SideMessage =
  | {
      kind: 'troupe:not-cloneable';
      lane: number;
      gen: number;
      item: number;
      threadId: number;
      path: string;
      message: string;
    }
  | {
      /** Posted once when a thread starts: its end of the context channel (see `context.ts`). */
      kind: 'troupe:ctx';
      threadId: number;
      port: MessagePort;
    };

/** What a handler may ask of the main thread through `ctx` (one Comlink channel per thread). */
export type ContextOp = 'send' | 'ask' | 'progress' | 'share' | 'lookup';

/** The main thread's side of the context channel, as Comlink exposes it to a thread. */
export interface ContextHostApi {
  /** An operation of item `item` of the hand-off in lane `l`, generation `g`. Never rejects. */
  call(l: number, g: number, item: number, op: ContextOp, args: unknown[]): Promise<CallResult>;
}

/** Errors cross the channel as data, so that a thread rebuilds them as `TroupeError`s with their code. */
export type CallResult = { ok: true; v: unknown } | { ok: false; e: WireError };

/**
 * Main → thread on the context channel: the pool gave up on item `i` of this hand-off, which the
 * thread is running (fires that item's `ctx.signal` listeners, and no other item's).
 */
export interface AbortNotice {
  troupe: 'abort';
  l: number;
  g: number;
  i: number;
}

// Lane words: `gen << 8 | code`, where code 0 = handed off, not started; 1..252 = running item
// (code - 1); 253 = taken back by the pool before any thread began it; 254 = done, answer sent;
// 255 = loading the module. The generation tells a stale write from a live one. A thread leaves
// "handed" only by a compare-and-swap, and so does the pool: exactly one of them gets the message.
export const LANE_HANDED = 0;
export const LANE_LOADING = 255;
/** Every item ran and the answer is on its way (it may still be lost if the thread dies now). */
export const LANE_DONE = 254;
/** The pool took the hand-off back (it waited behind a busy thread while another was free). */
export const LANE_STOLEN = 253;
export const MAX_BATCH = 252;
export const GEN_MASK = 0x7fffff;

export function laneWord(gen: number, code: number): number {
  return ((gen & GEN_MASK) << 8) | code;
}

/**
 * Skip words of one lane: the generation they belong to, then one bit per item (MAX_BATCH items
 * fit). Bits of another generation say nothing: the pool clears them before it writes the first
 * bit of a new hand-off on the lane.
 */
export const SKIP_WORDS = 1 + Math.ceil((MAX_BATCH + 1) / 32);

/** Was item `item` of the hand-off of generation `gen` in lane `lane` settled (skip it)? */
export function isSkipped(skips: Int32Array, lane: number, gen: number, item: number): boolean {
  const base = lane * SKIP_WORDS;
  if (Atomics.load(skips, base) !== gen) return false;
  return (Atomics.load(skips, base + 1 + (item >>> 5)) & (1 << (item & 31))) !== 0;
}

/**
 * Does a cancel or limit word (`laneWord(gen, k)`: items from k on) cover item `item` of the
 * hand-off of generation `gen`? A word of another generation covers nothing.
 */
export function covers(word: number, gen: number, item: number): boolean {
  return word >>> 8 === gen && item >= (word & 0xff);
}
