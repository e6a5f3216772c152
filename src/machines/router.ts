/**
 * The coordinator's post office: `tell` and `ask` between experts, by name or by skill, from the
 * main thread and from worker threads (`ctx`), plus what else a handler's `ctx` reaches on the
 * main thread (progress, the run's blackboard).
 *
 * Like results, messages go around the machines: routing one through the coordinator's event
 * queue would cost a macrostep each. The router reads the expert records the machines keep
 * current, and the expert machines tell it when an expert becomes ready or retires.
 *
 * - An inline handler (`onMessage` in the definition) runs on the main thread, at once, in the
 *   order messages arrive. A heavy one (`messages: 'heavy'`) runs the module's `onMessage`
 *   export on the pool, one at a time per receiver, so that order holds there too.
 * - An expert probing or backing off gets its messages in a mailbox, delivered once it is ready.
 * - An unknown, retired or deaf recipient is `E_NO_RECIPIENT` for the sender, never a drop.
 * - Every frame that asks while holding a worker thread is tracked; when every thread is held
 *   by asks that can never be answered (they wait for a thread), those asks fail
 *   `E_ASK_DEADLOCK` at once instead of at their timeout.
 */
import { describe, invalidOption, isTroupeError, TroupeError } from '../errors.js';
import { isDuration } from '../pool/options.js';
import type { ContextOp } from '../pool/protocol.js';
import { Deque } from '../pool/queue.js';
import type { AskOptions, MessageContext, Recipient } from '../types.js';
import type { Core, ExpertRecord, RunEntry, WorkOrder } from './core.js';

/** Something that sends messages, and waits on its asks. */
export interface Frame {
  kind: 'task' | 'heavy' | 'inline' | 'main';
  /** The expert acting (`troupe` for the main thread's API). */
  expert: string;
  runId: string | undefined;
  /** The subtask's index in its run, for a task. */
  index: number;
  /** Its asks not yet answered. */
  asks: Set<Ask>;
  /** It runs on a worker thread, which it holds while it waits. */
  onThread: boolean;
  ended: boolean;
}

interface Ask {
  from: Frame;
  to: string;
  /**
   * mailbox: its recipient is not ready; queued: waiting its turn at a heavy recipient; heavy:
   * handed to the pool (running if its handler frame holds a thread); inline: its handler runs.
   */
  state: 'mailbox' | 'queued' | 'heavy' | 'inline';
  handler: Frame | undefined;
  delivery: Delivery;
  settled: boolean;
  timer: unknown;
  resolve: (value: unknown) => void;
  reject: (error: TroupeError) => void;
}

interface Delivery {
  from: Frame;
  to: string;
  msg: unknown;
  ask: Ask | undefined;
  /** Aborts its job on the pool (heavy recipients). */
  controller: AbortController | undefined;
  /** Given up on before it started (its ask timed out or was cancelled): skipped. */
  dropped: boolean;
}

interface Box {
  /** Messages waiting for the expert to be ready. */
  mailbox: Deque<Delivery>;
  /** Messages waiting for the heavy handler to finish the one before. */
  heavy: Deque<Delivery>;
  heavyBusy: boolean;
}

const MAIN: Frame = Object.freeze({
  kind: 'main',
  expert: 'troupe',
  runId: undefined,
  index: -1,
  asks: new Set<Ask>(),
  onThread: false,
  ended: false,
}) as Frame;

function frame(kind: Frame['kind'], expert: string, runId: string | undefined, index = -1): Frame {
  return {
    kind,
    expert,
    runId,
    index,
    asks: new Set(),
    onThread: kind === 'task' || kind === 'heavy',
    ended: false,
  };
}

export class Router {
  readonly #core: Core;
  readonly #boxes = new Map<string, Box>();
  /** Frames on threads with asks pending: the deadlock check starts from them. */
  readonly #held = new Set<Frame>();
  readonly #asks = new Set<Ask>();
  readonly counts = { sent: 0, answered: 0, failed: 0 };
  #waiting = 0;
  #closed: TroupeError | undefined;

  constructor(core: Core) {
    this.#core = core;
    for (const name of core.experts.keys())
      this.#boxes.set(name, { mailbox: new Deque(), heavy: new Deque(), heavyBusy: false });
  }

  /** Messages waiting in mailboxes for experts not yet ready. */
  get waiting(): number {
    return this.#waiting;
  }

  /** The main thread's API (`troupe.tell`). */
  tellFromMain(to: unknown, msg: unknown): void {
    this.tell(MAIN, to, msg, 'tell(to)');
  }

  /** The main thread's API (`troupe.ask`). */
  askFromMain(to: unknown, msg: unknown, options: unknown): Promise<unknown> {
    if (options !== undefined && (options === null || typeof options !== 'object'))
      return Promise.reject(invalidOption('ask(options)', 'an object { timeoutMs? }', options));
    return this.ask(MAIN, to, msg, (options as AskOptions | undefined)?.timeoutMs, 'ask');
  }

  tell(from: Frame, to: unknown, msg: unknown, field = 'tell(to)'): void {
    this.#checkOpen();
    const name = this.#resolve(to, from, field);
    this.#count(from, name);
    this.#deliver({ from, to: name, msg, ask: undefined, controller: undefined, dropped: false });
  }

  ask(from: Frame, to: unknown, msg: unknown, timeoutMs: unknown, field = 'ask'): Promise<unknown> {
    let name: string;
    const limit = timeoutMs ?? this.#core.options.askTimeoutMs;
    try {
      this.#checkOpen();
      if (!(isDuration(limit) && limit > 0))
        throw invalidOption(`${field}(options).timeoutMs`, 'a duration in ms above 0', limit);
      name = this.#resolve(to, from, `${field}(to)`);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#count(from, name);
    return new Promise((resolve, reject) => {
      const delivery: Delivery = {
        from,
        to: name,
        msg,
        ask: undefined,
        controller: undefined,
        dropped: false,
      };
      const ask: Ask = {
        from,
        to: name,
        state: 'mailbox',
        handler: undefined,
        delivery,
        settled: false,
        timer: undefined,
        resolve,
        reject,
      };
      delivery.ask = ask;
      this.#asks.add(ask);
      from.asks.add(ask);
      if (from.onThread && !from.ended) this.#held.add(from);
      ask.timer = this.#core.clock.setTimeout(() => {
        const error = new TroupeError(
          'E_ASK_TIMEOUT',
          `${from.expert} asked ${name} and got no answer within ${limit} ms`,
          { details: { from: from.expert, to: name, timeoutMs: limit } },
        );
        this.#giveUp(ask, error);
      }, limit);
      this.#deliver(delivery);
      this.#checkDeadlock();
    });
  }

  /** The pool's context host: one `ctx` call of a task or a heavy handler on a thread. */
  call(origin: unknown, module: string, op: ContextOp, args: unknown[]): unknown {
    const from = this.#frameOf(origin, module);
    switch (op) {
      case 'send':
        this.tell(from, args[0], args[1], 'ctx.send(to)');
        return undefined;
      case 'ask':
        return this.ask(from, args[0], args[1], args[2], 'ctx.ask');
      case 'progress':
        this.#progress(from, args[0] as number, args[1] as string | undefined);
        return undefined;
      case 'share':
        this.#share(from, args[0], args[1]);
        return undefined;
      case 'lookup':
        return this.#board(from, 'lookup').board.get(String(args[0]));
      default:
        throw new TroupeError('E_INTERNAL', `ctx: unknown operation ${describe(op)}`);
    }
  }

  /**
   * A subtask's attempt ended: its thread is no longer held by its asks. If it failed (or was
   * cancelled or timed out), no one waits for the answers to its asks any more: they are given up.
   */
  ended(work: WorkOrder, error: TroupeError | undefined): void {
    const self = work.frame;
    if (self === undefined) return;
    this.#end(self);
    if (error === undefined) return;
    for (const ask of [...self.asks]) {
      this.#giveUp(
        ask,
        new TroupeError('E_CANCELLED', `the asking subtask ended first (${error.code})`, {
          cause: error,
        }),
      );
    }
  }

  /** An expert's state changed: deliver its mailbox once ready; fail it if retired. */
  onState(name: string, state: ExpertRecord['state']): void {
    const box = this.#boxes.get(name);
    if (box === undefined || box.mailbox.size === 0) return;
    if (state === 'ready' || state === 'busy') {
      while (box.mailbox.size > 0 && this.#isReady(name)) {
        const delivery = box.mailbox.shift() as Delivery;
        this.#waiting--;
        if (!delivery.dropped) this.#deliverNow(delivery);
      }
    } else if (state === 'retired') {
      const reason = this.#core.expert(name).reason ?? 'retired';
      while (box.mailbox.size > 0) {
        const delivery = box.mailbox.shift() as Delivery;
        this.#waiting--;
        if (delivery.dropped) continue;
        this.#failed(
          delivery,
          new TroupeError(
            'E_NO_RECIPIENT',
            `${name} retired before it took the message (${reason})`,
            {
              details: { to: name },
            },
          ),
        );
      }
    }
  }

  /** The troupe closes: every pending ask fails `E_CLOSED`, every timer is cleared. */
  close(error: TroupeError): void {
    this.#closed ??= error;
    for (const ask of [...this.#asks]) this.#giveUp(ask, error);
  }

  // ---------------------------------------------------------------------------------------------
  // Routing

  #checkOpen(): void {
    if (this.#closed !== undefined) throw this.#closed;
  }

  #frameOf(origin: unknown, module: string): Frame {
    const o = origin as (Partial<Frame> & Partial<WorkOrder>) | undefined;
    if (o !== undefined && o !== null && o.asks instanceof Set) return o as Frame;
    const work = o as WorkOrder | undefined;
    if (work !== undefined && typeof work.runId === 'string' && typeof work.index === 'number') {
      work.frame ??= frame('task', module, work.runId, work.index);
      return work.frame;
    }
    return frame('heavy', module, undefined);
  }

  #resolve(to: unknown, from: Frame, field: string): string {
    const core = this.#core;
    if (typeof to === 'string') {
      const record = core.experts.get(to);
      if (record === undefined) {
        throw new TroupeError(
          'E_NO_RECIPIENT',
          `${field}: no expert is named "${to}"; experts: ${[...core.experts.keys()].join(', ')}`,
          { details: { to } },
        );
      }
      if (!takesMessages(record)) {
        throw new TroupeError(
          'E_NO_RECIPIENT',
          `${field}: ${to} takes no messages (its definition has neither onMessage nor messages: 'heavy')`,
          { details: { to } },
        );
      }
      if (record.state === 'retired') {
        throw new TroupeError(
          'E_NO_RECIPIENT',
          `${field}: ${to} is retired (${record.reason ?? 'retired'})`,
          { details: { to } },
        );
      }
      return to;
    }
    if (
      to === null ||
      typeof to !== 'object' ||
      typeof (to as { skill?: unknown }).skill !== 'string'
    )
      throw invalidOption(field, 'an expert name or { skill, level? }', to);
    const { skill, level = 1 } = to as { skill: string; level?: number };
    if (!(Number.isInteger(level) && level >= 1 && level <= 5))
      throw invalidOption(`${field}.level`, 'a level from 1 to 5', level);
    let best: ExpertRecord | undefined;
    let bestIsSender = false;
    for (const record of core.experts.values()) {
      const has = record.def.skills[skill];
      if (has === undefined || has < level || !takesMessages(record) || record.state === 'retired')
        continue;
      const isSender = record.def.name === from.expert;
      if (
        best === undefined ||
        (bestIsSender && !isSender) ||
        (bestIsSender === isSender && better(record, best, skill))
      ) {
        best = record;
        bestIsSender = isSender;
      }
    }
    if (best === undefined) {
      throw new TroupeError(
        'E_NO_RECIPIENT',
        `${field}: no expert that takes messages has the skill "${skill}" at level ${level} or above`,
        { details: { skill, level } },
      );
    }
    return best.def.name;
  }

  #isReady(name: string): boolean {
    const state = this.#core.expert(name).state;
    return state === 'ready' || state === 'busy';
  }

  #deliver(delivery: Delivery): void {
    const box = this.#boxes.get(delivery.to) as Box;
    if (box.mailbox.size > 0 || !this.#isReady(delivery.to)) {
      box.mailbox.push(delivery);
      this.#waiting++;
      return;
    }
    this.#deliverNow(delivery);
  }

  #deliverNow(delivery: Delivery): void {
    const record = this.#core.expert(delivery.to);
    if (record.def.messages === 'heavy') {
      const box = this.#boxes.get(delivery.to) as Box;
      if (delivery.ask !== undefined) delivery.ask.state = 'queued';
      box.heavy.push(delivery);
      this.#pumpHeavy(delivery.to, box);
      return;
    }
    this.#runInline(record, delivery);
  }

  #runInline(record: ExpertRecord, delivery: Delivery): void {
    const handler = record.def.onMessage as NonNullable<ExpertRecord['def']['onMessage']>;
    const self = frame('inline', delivery.to, delivery.from.runId);
    const ask = delivery.ask;
    let out: unknown;
    try {
      out = handler(delivery.msg, delivery.from.expert, new InlineContext(this, self));
    } catch (error) {
      this.#handlerFailed(delivery, error);
      self.ended = true;
      return;
    }
    if (!isThenable(out)) {
      self.ended = true;
      if (ask !== undefined) this.#answer(ask, out);
      return;
    }
    if (ask !== undefined) {
      ask.state = 'inline';
      ask.handler = self;
    }
    Promise.resolve(out).then(
      (value) => {
        self.ended = true;
        if (ask !== undefined) this.#answer(ask, value);
      },
      (error: unknown) => {
        self.ended = true;
        this.#handlerFailed(delivery, error);
      },
    );
  }

  /** One heavy message at a time per receiver, on the pool. */
  #pumpHeavy(name: string, box: Box): void {
    if (box.heavyBusy) return;
    let delivery: Delivery | undefined;
    do delivery = box.heavy.shift();
    while (delivery?.dropped === true);
    if (delivery === undefined) return;
    box.heavyBusy = true;
    const record = this.#core.expert(name);
    const self = frame('heavy', name, delivery.from.runId);
    const controller = new AbortController();
    delivery.controller = controller;
    const ask = delivery.ask;
    if (ask !== undefined) {
      ask.state = 'heavy';
      ask.handler = self;
    }
    const done = (): void => {
      this.#end(self);
      box.heavyBusy = false;
      this.#pumpHeavy(name, box);
    };
    this.#core.pool
      .message(name, delivery.msg, delivery.from.expert, {
        origin: self,
        signal: controller.signal,
        timeoutMs: record.def.timeoutMs ?? this.#core.options.timeoutMs,
        context: { task: { runId: delivery.from.runId, from: delivery.from.expert } },
      })
      .then(
        (value) => {
          if (ask !== undefined) this.#answer(ask, value);
          done();
        },
        (error: unknown) => {
          const typed = toTroupeError(error, name);
          if (!delivery.dropped) this.#core.recordFault(record, typed);
          this.#handlerFailed(delivery, typed);
          done();
        },
      );
    // Waiting for a thread: if every thread is held by asks, this may be what they wait for.
    this.#checkDeadlock();
  }

  #handlerFailed(delivery: Delivery, error: unknown): void {
    const typed = isTroupeError(error)
      ? error
      : new TroupeError(
          'E_TASK_FAILED',
          `${delivery.to}.onMessage threw: ${error instanceof Error ? error.message : String(error)}`,
          { cause: error, details: { expert: delivery.to } },
        );
    this.#failed(delivery, typed);
  }

  /** A message could not be taken or answered: the asker gets the error; a tell is reported. */
  #failed(delivery: Delivery, error: TroupeError): void {
    if (delivery.ask !== undefined) {
      this.#giveUp(delivery.ask, error);
      return;
    }
    if (delivery.dropped) return;
    this.counts.failed++;
    const runId = delivery.from.runId;
    if (runId !== undefined) {
      this.#core.emit(runId, {
        type: 'message.failed',
        runId,
        from: delivery.from.expert,
        to: delivery.to,
        error,
      });
    }
  }

  #answer(ask: Ask, value: unknown): void {
    if (!this.#settle(ask)) return;
    this.counts.answered++;
    ask.resolve(value);
  }

  /** Fails an ask, and drops or aborts its delivery if it has not run to the end. */
  #giveUp(ask: Ask, error: TroupeError): void {
    if (!this.#settle(ask)) return;
    this.counts.failed++;
    ask.delivery.dropped = true;
    ask.delivery.controller?.abort(error);
    ask.reject(error);
  }

  #settle(ask: Ask): boolean {
    if (ask.settled) return false;
    ask.settled = true;
    this.#core.clock.clearTimeout(ask.timer);
    this.#asks.delete(ask);
    ask.from.asks.delete(ask);
    if (ask.from.asks.size === 0) this.#held.delete(ask.from);
    return true;
  }

  #end(self: Frame): void {
    self.ended = true;
    this.#held.delete(self);
  }

  #count(from: Frame, to: string): void {
    this.counts.sent++;
    const entry = from.runId === undefined ? undefined : this.#core.runs.get(from.runId);
    if (entry === undefined) return;
    entry.messages++;
    const key = `${from.expert}\u0000${to}`;
    entry.pairs.set(key, (entry.pairs.get(key) ?? 0) + 1);
    if (from.kind === 'task' && entry.ledger !== undefined && from.index >= 0) {
      const sent = entry.ledger.messages;
      sent[from.index] = (sent[from.index] as number) + 1;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Progress and the blackboard

  #progress(from: Frame, fraction: number, note: string | undefined): void {
    if (from.kind !== 'task' || from.runId === undefined) return;
    const entry = this.#core.runs.get(from.runId);
    const ledger = entry?.ledger;
    if (entry === undefined || entry.finished || ledger === undefined) return;
    if (!(typeof fraction === 'number' && fraction >= 0 && fraction <= 1)) return;
    if (!ledger.reportProgress(from.index, fraction)) return;
    const id = ledger.graph.ids[from.index] as string;
    const overall = ledger.overallProgress;
    this.#core.emit(from.runId, {
      type: 'subtask.progress',
      runId: from.runId,
      id,
      fraction,
      note,
      overall,
    });
    const onProgress = entry.options.onProgress;
    if (onProgress === undefined) return;
    try {
      onProgress({
        runId: from.runId,
        id,
        fraction,
        note,
        done: ledger.terminal,
        total: ledger.size,
        overall,
      });
    } catch {
      // The caller's progress display failing is not the run's failure.
    }
  }

  #board(from: Frame, op: string): RunEntry {
    const entry = from.runId === undefined ? undefined : this.#core.runs.get(from.runId);
    if (entry === undefined || entry.finished) {
      throw new TroupeError(
        'E_INVALID_OPTION',
        `ctx.${op}: the blackboard belongs to a run, and this handler runs outside any active run`,
      );
    }
    return entry;
  }

  #share(from: Frame, key: unknown, bytes: unknown): void {
    if (typeof key !== 'string' || key.length === 0)
      throw invalidOption('ctx.share(key)', 'a non-empty string', key);
    if (!(bytes instanceof Uint8Array))
      throw new TroupeError('E_INTERNAL', 'ctx.share: the value did not arrive serialized');
    const entry = this.#board(from, 'share');
    const limit = this.#core.options.maxBlackboardBytes;
    const before = entry.board.get(key)?.byteLength ?? 0;
    const total = entry.boardBytes - before + bytes.byteLength;
    if (total > limit) {
      throw new TroupeError(
        'E_TOO_LARGE',
        `ctx.share("${key}"): ${bytes.byteLength} bytes would bring the run's blackboard to ${total} bytes, past its limit of ${limit} (maxBlackboardBytes)`,
        { details: { key, bytes: bytes.byteLength, used: entry.boardBytes, limit } },
      );
    }
    entry.board.set(key, bytes);
    entry.boardBytes = total;
  }

  // ---------------------------------------------------------------------------------------------
  // Deadlock

  /**
   * When every thread is held by a frame waiting on asks, finds the asks that can never be
   * answered — they wait for a thread (a heavy handler not started, an expert not ready), or for
   * a handler that itself waits on such an ask — and, if they hold every thread, fails the ones
   * waiting for a thread with `E_ASK_DEADLOCK`.
   */
  #checkDeadlock(): void {
    const threads = this.#core.options.threads;
    if (this.#held.size < threads) return;
    const frames = new Set<Frame>();
    const asks = new Set<Ask>();
    const visit = (f: Frame): void => {
      if (frames.has(f)) return;
      frames.add(f);
      for (const a of f.asks) {
        asks.add(a);
        if (a.handler !== undefined) visit(a.handler);
      }
    };
    for (const f of this.#held) visit(f);
    // Greatest fixpoint: everything is stuck until shown able to move.
    const waitsOnHandler = (a: Ask): boolean =>
      a.state === 'inline' ||
      (a.state === 'heavy' && a.handler !== undefined && this.#held.has(a.handler));
    for (let changed = true; changed; ) {
      changed = false;
      for (const a of asks) {
        if (waitsOnHandler(a) && !frames.has(a.handler as Frame)) {
          asks.delete(a);
          changed = true;
        }
      }
      for (const f of frames) {
        let stuck = false;
        for (const a of f.asks) if (asks.has(a)) stuck = true;
        if (!stuck) {
          frames.delete(f);
          changed = true;
        }
      }
    }
    let stuckThreads = 0;
    for (const f of this.#held) if (frames.has(f)) stuckThreads++;
    if (stuckThreads < threads) return;
    const chain = [...this.#held]
      .map((f) => `${f.expert} asks ${[...f.asks].map((a) => a.to).join(', ')}`)
      .join('; ');
    for (const a of asks) {
      if (waitsOnHandler(a)) continue;
      this.#giveUp(
        a,
        new TroupeError(
          'E_ASK_DEADLOCK',
          `${a.from.expert} asked ${a.to}, but a cycle of asks holds every thread (${threads}): ${chain}`,
          { details: { from: a.from.expert, to: a.to, threads } },
        ),
      );
    }
  }
}

/** `ctx` of an inline handler: it sends as the expert it belongs to. */
class InlineContext implements MessageContext {
  readonly #router: Router;
  readonly #frame: Frame;

  constructor(router: Router, self: Frame) {
    this.#router = router;
    this.#frame = self;
  }

  get expert(): string {
    return this.#frame.expert;
  }

  get runId(): string | undefined {
    return this.#frame.runId;
  }

  tell(to: Recipient, msg: unknown): void {
    this.#router.tell(this.#frame, to, msg, 'ctx.tell(to)');
  }

  ask<T = unknown>(to: Recipient, msg: unknown, options?: AskOptions): Promise<T> {
    return this.#router.ask(this.#frame, to, msg, options?.timeoutMs, 'ctx.ask') as Promise<T>;
  }
}

function takesMessages(record: ExpertRecord): boolean {
  return record.def.onMessage !== undefined || record.def.messages === 'heavy';
}

/** Delegation's rule: ready first, then least loaded, then higher level, then name. */
function better(a: ExpertRecord, b: ExpertRecord, skill: string): boolean {
  const readyA = a.state === 'ready' || a.state === 'busy';
  const readyB = b.state === 'ready' || b.state === 'busy';
  if (readyA !== readyB) return readyA;
  const loadA = a.slot.active / a.slot.concurrency;
  const loadB = b.slot.active / b.slot.concurrency;
  if (loadA !== loadB) return loadA < loadB;
  const levelA = a.def.skills[skill] as number;
  const levelB = b.def.skills[skill] as number;
  if (levelA !== levelB) return levelA > levelB;
  return a.def.name < b.def.name;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

function toTroupeError(error: unknown, name: string): TroupeError {
  if (isTroupeError(error)) return error;
  return new TroupeError(
    'E_INTERNAL',
    `${name}: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  );
}
