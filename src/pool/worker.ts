/**
 * The thread entry: troupe's own dispatcher, the only filename Piscina is given. It never fails
 * to start (Piscina stops replacing crashed threads for good once one fails while starting), loads
 * each registered module lazily, once per thread, by name, and reports what it is doing through
 * the shared lanes so that the main thread can time tasks from their start without a message.
 *
 * Not exported from the package: users never import it.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { messageOf, serializeError, TroupeError, type WireError } from '../errors.js';
import { isThenable } from '../validate.js';
import { findUncloneable } from './clone.js';
import { openContextChannel, releaseSignal, TaskContext } from './context.js';
import { payloadBytes } from './payload.js';
import {
  covers,
  type ItemFailureCode,
  type ItemResult,
  isSkipped,
  LANE_DONE,
  LANE_HANDED,
  LANE_LOADING,
  laneWord,
  type MessageInput,
  type SideMessage,
  type TaskContextData,
  type TaskMessage,
  type TaskResponse,
  unpackContext,
  type WorkerBoot,
} from './protocol.js';
import { spinningWait } from './spin.js';

type Handler = (input: unknown, ctx: unknown) => unknown;
type MessageHandler = (msg: unknown, from: string, ctx: unknown) => unknown;

interface LoadedModule {
  run: Handler;
  probe: (() => unknown) | undefined;
  onMessage: MessageHandler | undefined;
}

const boot = workerData as WorkerBoot;
const lanes = boot.laneState.byteLength / 16;
const laneState = new Int32Array(boot.laneState, 0, lanes);
const laneThread = new Int32Array(boot.laneState, lanes * 4, lanes);
const laneCancel = new Int32Array(boot.laneState, lanes * 8, lanes);
const laneLimit = new Int32Array(boot.laneState, lanes * 12, lanes);
const laneTime = new Float64Array(boot.laneTime);
const laneSkip = new Int32Array(boot.laneSkip);
const offset = performance.timeOrigin - boot.epoch;
const now = (): number => offset + performance.now();
openContextChannel(laneCancel, laneSkip, boot.context);
const doomed = new Int32Array(boot.doomed);

/**
 * Called each time the thread is about to wait for its next message: a thread the pool has
 * terminated exits here instead of going to sleep. Node (20) can drop a `worker.terminate()`:
 * one that lands while the thread is reporting an error thrown in a microtask (Piscina rethrows
 * a failed post that way; the 'uncaughtException' listeners run inside that report) ends the
 * listener, but the microtasks already queued still run. Back in its event loop, such a thread
 * still stops; asleep in Piscina's `Atomics.wait` (after it posted another answer), it is never
 * woken and never exits, and Piscina's `destroy()` waits for it forever.
 */
function exitIfDoomed(): void {
  if (Atomics.load(doomed, threadId % doomed.length) === threadId) process.exit(1);
}

// Spin (if idleSpinMs > 0), then sleep, unless doomed: see spin.ts.
Atomics.wait = spinningWait(
  Atomics.wait,
  boot.idleSpinMs,
  undefined,
  exitIfDoomed,
) as unknown as typeof Atomics.wait;

const modules = new Map<string, LoadedModule>();
/** Which task an asynchronous callback belongs to: lets an uncaught error find its owner. */
const owner = new AsyncLocalStorage<number>();
let tokens = 0;
/** The asynchronous item now running, and how to fail it from an uncaught error. */
let current: { token: number; fail: (error: unknown) => void } | undefined;
const stray: WireError[] = [];
let recycle = false;
/** The last answers handed to Piscina, kept in case one turns out not to be cloneable. */
const lastAnswers: { message: TaskMessage; response: TaskResponse }[] = [];

function onUncaught(error: unknown): void {
  const token = owner.getStore();
  if (current !== undefined && token === current.token) {
    // The running task's own callback threw: it fails; the thread is replaced afterwards.
    recycle = true;
    current.fail(error);
    return;
  }
  // Piscina could not post an answer: a DataCloneError, or whatever cloning it threw (a getter,
  // a value nested too deep). reportUncloneable looks for the value among the last answers.
  if (lastAnswers.length > 0 && reportUncloneable(error)) return;
  // Left behind by an earlier task (or by a module's top level): never charged to a task.
  stray.push(serializeError(error));
  recycle = true;
}

process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

/**
 * Piscina could not send an answer: say which value. The main thread then settles that item,
 * hands the others elsewhere and terminates this thread (Piscina's task for it would never end).
 * False if no value of the last answers fails to clone: the error is not about them.
 */
function reportUncloneable(error: unknown): boolean {
  let side: SideMessage | undefined;
  for (const { message, response } of lastAnswers) {
    for (let index = 0; index < response.r.length && side === undefined; index++) {
      const result = response.r[index];
      if (result?.ok !== true) continue;
      const at = findUncloneable(result.v, 'output');
      if (at === undefined) continue;
      side = {
        kind: 'troupe:not-cloneable',
        lane: message.l,
        gen: message.g,
        item: index,
        threadId,
        path: `${at.path} (${at.what})`,
        message: messageOf(error),
      };
    }
    if (side !== undefined) break;
  }
  if (side === undefined) return false;
  parentPort?.postMessage(side);
  return true;
}

async function load(name: string): Promise<LoadedModule> {
  const href = boot.modules[name];
  if (href === undefined) {
    throw new TroupeError('E_MODULE_LOAD', `no module is registered as "${name}"`);
  }
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new TroupeError(
          'E_MODULE_LOAD',
          `module "${name}" took longer than ${boot.moduleLoadTimeoutMs} ms to load`,
        ),
      );
    }, boot.moduleLoadTimeoutMs);
  });
  let namespace: Record<string, unknown>;
  try {
    namespace = (await Promise.race([import(href), limit])) as Record<string, unknown>;
  } catch (error) {
    if (error instanceof TroupeError) throw error;
    throw new TroupeError('E_MODULE_LOAD', `module "${name}" failed to load: ${messageOf(error)}`, {
      cause: error,
    });
  } finally {
    clearTimeout(timer);
  }
  const run = namespace.default;
  if (typeof run !== 'function') {
    throw new TroupeError(
      'E_MODULE_LOAD',
      `module "${name}" must export a default function (input, ctx) => output; its default export is ${typeof run}`,
    );
  }
  const probe = namespace.probe;
  if (probe !== undefined && typeof probe !== 'function') {
    throw new TroupeError(
      'E_MODULE_LOAD',
      `module "${name}" exports a probe that is not a function`,
    );
  }
  const onMessage = namespace.onMessage;
  if (onMessage !== undefined && typeof onMessage !== 'function') {
    throw new TroupeError(
      'E_MODULE_LOAD',
      `module "${name}" exports an onMessage that is not a function`,
    );
  }
  const loaded: LoadedModule = {
    run: run as Handler,
    probe: probe as (() => unknown) | undefined,
    onMessage: onMessage as MessageHandler | undefined,
  };
  modules.set(name, loaded);
  return loaded;
}

function contextOf(message: TaskMessage, index: number): TaskContext {
  const data: TaskContextData | undefined = unpackContext(message, index);
  return new TaskContext(data?.task, data?.deps, message.l, message.g, index, message.i.length);
}

function deliver(loaded: LoadedModule, message: TaskMessage, index: number): unknown {
  if (loaded.onMessage === undefined) {
    throw new TroupeError(
      'E_TASK_FAILED',
      `module "${message.m}" has no onMessage export, and its expert takes messages on the pool`,
    );
  }
  const { msg, from } = message.i[index] as MessageInput;
  return loaded.onMessage(msg, from, contextOf(message, index));
}

function failure(error: unknown, start: number, code: ItemFailureCode): ItemResult {
  return { ok: false, e: serializeError(error), ms: now() - start, code };
}

const maxOutput = boot.maxOutputBytes;

/** A handler's output, unless it weighs more than the pool's `maxOutputBytes` (not sent, then). */
function weighed(value: unknown, start: number, kind: TaskMessage['k']): ItemResult {
  const weighable = typeof value === 'string' || (typeof value === 'object' && value !== null);
  if (maxOutput === 0 || kind === 'probe' || !weighable)
    return { ok: true, v: value, ms: now() - start };
  const weight = payloadBytes(value, maxOutput);
  if (weight <= maxOutput) return { ok: true, v: value, ms: now() - start };
  // The main thread words it (see failures.ts, tooLarge), naming the subtask.
  const error = new TroupeError('E_TOO_LARGE', 'the output weighs more than maxOutputBytes', {
    details: { limit: maxOutput, bytes: weight },
  });
  return { ok: false, e: serializeError(error), ms: now() - start, code: 'E_TOO_LARGE' };
}

function runItem(
  loaded: LoadedModule,
  message: TaskMessage,
  index: number,
  start: number,
): ItemResult | Promise<ItemResult> {
  const token = ++tokens;
  const code: ItemFailureCode = message.k === 'probe' ? 'E_PROBE_FAILED' : 'E_TASK_FAILED';
  let out: unknown;
  try {
    if (message.k === 'probe') {
      const requires = (message.i[index] as { requires?: string[] } | undefined)?.requires;
      if (requires?.includes('onMessage') === true && loaded.onMessage === undefined) {
        throw new TroupeError(
          'E_PROBE_FAILED',
          `module "${message.m}" has no onMessage export, and its expert takes messages on the pool (messages: 'heavy')`,
        );
      }
      out = loaded.probe === undefined ? true : owner.run(token, loaded.probe);
    } else if (message.k === 'message') {
      if (givenUp(message, index)) return SKIPPED;
      out = owner.run(token, deliver, loaded, message, index);
    } else {
      const ctx = contextOf(message, index);
      if (givenUp(message, index)) return SKIPPED;
      out = owner.run(token, loaded.run, message.i[index], ctx);
    }
  } catch (error) {
    return failure(error, start, code);
  }
  if (!isThenable(out)) return weighed(out, start, message.k);
  return new Promise<ItemResult>((resolve) => {
    const settle = (result: ItemResult): void => {
      if (current?.token !== token) return;
      current = undefined;
      resolve(result);
    };
    current = { token, fail: (error) => settle(failure(error, start, code)) };
    out.then(
      (value) => settle(weighed(value, start, message.k)),
      (error: unknown) => settle(failure(error, start, code)),
    );
  });
}

function answer(message: TaskMessage, results: ItemResult[], own?: number): TaskResponse {
  const response: TaskResponse = { r: results, th: threadId };
  if (stray.length > 0) response.stray = stray.splice(0);
  if (recycle) response.recycle = true;
  // Done: if the thread dies before Piscina reads this answer, these items are not to blame.
  // (Only while the lane still holds what this thread last wrote: one it never claimed, or
  // that the pool gave to another hand-off since, is not this thread's to write.)
  if (own !== undefined)
    Atomics.compareExchange(laneState, message.l, own, laneWord(message.g, LANE_DONE));
  lastAnswers.push({ message, response });
  if (lastAnswers.length > 2) lastAnswers.shift();
  return response;
}

/**
 * Piscina calls this for every message the pool hands to this thread. The pool lets Piscina
 * post a second message while the first runs, so that the thread finds its next work waiting
 * instead of sleeping until the main thread answers. Messages still run one at a time, in
 * order, each after the previous one's answer has been posted: a chain of promises puts the
 * start of each behind the previous one's settlement and Piscina's posting of it.
 */
export default function dispatch(message: TaskMessage): 0 | Promise<TaskResponse> {
  if (message.k === 'ping') return 0;
  const result = chain.then(() => start(message));
  chain = result.then(noop, noop);
  return result;
}

let chain: Promise<unknown> = Promise.resolve();
const noop = (): void => {};

function start(message: TaskMessage): TaskResponse | Promise<TaskResponse> {
  const { l: lane, g: gen } = message;
  const loaded = modules.get(message.m);
  const handed = laneWord(gen, LANE_HANDED);
  // Taken back already (below): the lane may be another hand-off's by now; touch nothing.
  if (Atomics.load(laneState, lane) !== handed) return answer(message, skipRest(message, []));
  laneThread[lane] = threadId;
  laneTime[lane] = now();
  // Claim the hand-off: the pool may have taken it back while it waited in this thread's port
  // (another thread went idle meanwhile). One compare-and-swap each: only one of us gets it.
  const first = laneWord(gen, loaded === undefined ? LANE_LOADING : 1);
  if (Atomics.compareExchange(laneState, lane, handed, first) !== handed)
    return answer(message, skipRest(message, []));
  if (loaded === undefined) return loadThenRun(message, first);
  return runFrom(loaded, message, [], 0, first);
}

/**
 * Runs items from `index` on; goes asynchronous at the first item that returns a promise. `own`
 * is what this thread last wrote to the lane: each stamp replaces it by compare-and-swap, so that
 * a thread that fell behind (its hand-off given up on and its lane handed to another since, as
 * while it loaded the module or ran an item past its cancel) skips the rest instead of stamping
 * over the lane's new holder and reading that holder's cancel word as its own.
 */
function runFrom(
  loaded: LoadedModule,
  message: TaskMessage,
  results: ItemResult[],
  index: number,
  own: number,
): TaskResponse | Promise<TaskResponse> {
  const { l: lane, g: gen } = message;
  for (; index < message.i.length; index++) {
    const start = now();
    const stamp = laneWord(gen, index + 1);
    // Looked at before the time is written: a lane handed on keeps its new holder's time.
    if (stamp !== own && Atomics.load(laneState, lane) !== own)
      return answer(message, skipRest(message, results));
    laneTime[lane] = start;
    if (stamp !== own) {
      if (Atomics.compareExchange(laneState, lane, own, stamp) !== own)
        return answer(message, skipRest(message, results));
      own = stamp;
    }
    // Stamp first, then read the cancel word (see Lanes.cancel): the pool gave up on the rest.
    if (covers(Atomics.load(laneCancel, lane), gen, index))
      return answer(message, skipRest(message, results), own);
    // ...and the limit word (see Lanes.trim): the pool took the rest back for another thread.
    if (covers(Atomics.load(laneLimit, lane), gen, index))
      return answer(message, skipRest(message, results, TRIMMED), own);
    // ...and the item's own skip bit (see Lanes.skip): the pool settled this one alone.
    if (isSkipped(laneSkip, lane, gen, index)) {
      results.push(SKIPPED);
      continue;
    }
    const result = runItem(loaded, message, index, start);
    if (result instanceof Promise) {
      const next = index + 1;
      const held = own;
      return result.then((settled) => {
        releaseSignal(lane);
        results.push(settled);
        return runFrom(loaded, message, results, next, held);
      });
    }
    releaseSignal(lane);
    results.push(result);
  }
  return answer(message, results, own);
}

/**
 * Whether the pool gave up on the item since its start was stamped (runFrom). Read again right
 * before its handler is called, after its context is unpacked: a thread held up between the
 * stamp and the call (descheduled on a busy machine) would otherwise begin a handler the pool
 * settled as cancelled meanwhile. Past this read, only the call itself is left.
 */
function givenUp(message: TaskMessage, index: number): boolean {
  const { l: lane, g: gen } = message;
  return (
    covers(Atomics.load(laneCancel, lane), gen, index) || isSkipped(laneSkip, lane, gen, index)
  );
}

/** The result of an item the thread did not begin (the pool settles or requeues it itself). */
function notBegun(code: 'E_CANCELLED' | 'E_TRIMMED', message: string): ItemResult {
  return Object.freeze({ ok: false, code, e: { name: 'TroupeError', message }, ms: 0 });
}

const SKIPPED = notBegun('E_CANCELLED', 'skipped: the pool gave up on it before it started');
const TRIMMED = notBegun('E_TRIMMED', 'not begun: the pool took it back for another thread');

function skipRest(message: TaskMessage, results: ItemResult[], as = SKIPPED): ItemResult[] {
  while (results.length < message.i.length) results.push(as);
  return results;
}

async function loadThenRun(message: TaskMessage, own: number): Promise<TaskResponse> {
  const start = now();
  laneTime[message.l] = start;
  let loaded: LoadedModule;
  try {
    loaded = await load(message.m);
  } catch (error) {
    return answer(
      message,
      message.i.map(() => failure(error, start, 'E_MODULE_LOAD')),
      own,
    );
  }
  return runFrom(loaded, message, [], 0, own);
}
