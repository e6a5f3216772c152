/**
 * The coordinator's post office: `tell` and `ask` between experts, by name or by skill, from the
 * main thread and from worker threads (their `ctx` calls reach it through context.ts).
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
 *   by asks that can never be answered (they wait for a thread), the newest fails
 *   `E_ASK_DEADLOCK` at once instead of at its timeout (deadlock.ts).
 */

import type { ExpertRecord, WorkOrder } from '../actors/types.js';
import { invalidOption, notify, TroupeError, wrapThrown } from '../errors.js';
import type { Executor } from '../executors/executor.js';
import { readFields } from '../fields.js';
import type { ResolvedTroupe } from '../options.js';
import { Deque } from '../pool/queue.js';
import { MessageEnd } from '../runs/messages.js';
import type { Run } from '../runs/run.js';
import type {
  AskOptions,
  Clock,
  MessageContext,
  MessageFailure,
  Recipient,
  RunEvent,
} from '../types.js';
import { isLevel, isPositiveDuration, isThenable, LEVEL, POSITIVE_DURATION } from '../validate.js';
import { findDeadlock } from './deadlock.js';
import type { Ask, Delivery, Frame } from './types.js';

/** What the router needs of the runtime: its experts and runs, the clock, faults and events. */
export interface RouterHost {
  readonly options: Pick<ResolvedTroupe, 'askTimeoutMs' | 'timeoutMs'>;
  readonly clock: Clock;
  readonly experts: ReadonlyMap<string, ExpertRecord>;
  readonly runs: ReadonlyMap<string, Run>;
  readonly onMessageFailed: ((failure: MessageFailure) => void) | undefined;
  expert(name: string): ExpertRecord;
  executorOf(expert: string): Executor;
  recordFault(record: ExpertRecord, error: TroupeError): void;
  emit(runId: string, event: RunEvent): void;
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
  thread: -1,
  ended: false,
}) as Frame;

/** A new frame: a subtask's attempt (`task`), a heavy or inline handler. */
export function frame(
  kind: Frame['kind'],
  expert: string,
  runId: string | undefined,
  index = -1,
): Frame {
  return {
    kind,
    expert,
    runId,
    index,
    asks: new Set(),
    onThread: kind === 'task' || kind === 'heavy',
    thread: -1,
    ended: false,
  };
}

function delivery(from: Frame, to: string, msg: unknown, log: Delivery['log']): Delivery {
  return {
    from,
    to,
    msg,
    ask: undefined,
    controller: undefined,
    dropped: false,
    inMailbox: false,
    log,
  };
}

export class Router {
  readonly #core: RouterHost;
  readonly #boxes = new Map<string, Box>();
  /** Frames on threads with asks pending: the deadlock check starts from them. */
  readonly #held = new Set<Frame>();
  readonly #asks = new Set<Ask>();
  readonly counts = { sent: 0, answered: 0, failed: 0 };
  #waiting = 0;
  #asked = 0;
  #closed: TroupeError | undefined;
  /** The fewest threads of any expert's pool: fewer frames held cannot fill one. */
  readonly #fewestThreads: number;

  constructor(core: RouterHost) {
    this.#core = core;
    this.#fewestThreads = Math.min(
      ...[...core.experts.keys()].map((name) => core.executorOf(name).threads),
    );
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
    let timeoutMs: unknown;
    try {
      timeoutMs = askTimeout(options, 'ask(options)');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.ask(MAIN, to, msg, timeoutMs, 'ask');
  }

  tell(from: Frame, to: unknown, msg: unknown, field = 'tell(to)'): void {
    this.#checkOpen();
    const name = this.#resolve(to, from, field);
    this.#deliver(delivery(from, name, msg, this.#count(from, name, 'tell')));
  }

  ask(from: Frame, to: unknown, msg: unknown, timeoutMs: unknown, field = 'ask'): Promise<unknown> {
    let name: string;
    const limit = timeoutMs ?? this.#core.options.askTimeoutMs;
    try {
      this.#checkOpen();
      if (!isPositiveDuration(limit))
        throw invalidOption(`${field}(options).timeoutMs`, POSITIVE_DURATION, limit);
      name = this.#resolve(to, from, `${field}(to)`);
    } catch (error) {
      return Promise.reject(error);
    }
    const logged = this.#count(from, name, 'ask');
    return new Promise((resolve, reject) => {
      const letter = delivery(from, name, msg, logged);
      const ask: Ask = {
        seq: ++this.#asked,
        from,
        to: name,
        state: 'mailbox',
        handler: undefined,
        delivery: letter,
        settled: false,
        timer: undefined,
        resolve,
        reject,
      };
      letter.ask = ask;
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
      this.#deliver(letter);
      this.#checkDeadlock();
    });
  }

  /**
   * A subtask's attempt ended: its thread is no longer held by its asks. If it failed (or was
   * cancelled or timed out), no one waits for the answers to its asks any more: they are given up.
   */
  ended(work: WorkOrder, error: TroupeError | undefined): void {
    if (work.frame !== undefined) this.#endFrame(work.frame, error);
  }

  #endFrame(self: Frame, error: TroupeError | undefined): void {
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

  /**
   * An expert's state changed: once it is ready, deliver its mailbox and resume its heavy
   * queue; if it retired, fail what waits for it.
   */
  onState(name: string, state: ExpertRecord['state']): void {
    const box = this.#boxes.get(name);
    if (box === undefined) return;
    if (state === 'ready' || state === 'busy') {
      while (box.mailbox.size > 0 && this.#isReady(name)) {
        const letter = box.mailbox.shift() as Delivery;
        this.#unbox(letter);
        if (!letter.dropped) this.#deliverNow(letter);
      }
      this.#pumpHeavy(name, box);
    } else if (state === 'retired') {
      const reason = this.#core.expert(name).reason ?? 'retired';
      const waiting = [...box.mailbox.drain(), ...box.heavy.drain()];
      for (const letter of waiting) {
        this.#unbox(letter);
        if (letter.dropped) continue;
        const error = new TroupeError(
          'E_NO_RECIPIENT',
          `${name} retired before it took the message (${reason})`,
          { details: { to: name } },
        );
        this.#failed(letter, error);
      }
    }
  }

  #unbox(letter: Delivery): void {
    if (!letter.inMailbox) return;
    letter.inMailbox = false;
    this.#waiting--;
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
          `${field}: ${to} is ${record.reason ?? 'retired'}`,
          { details: { to } },
        );
      }
      return to;
    }
    const recipient = readFields(to, field, RECIPIENT_KEYS, 'an expert name or { skill, level? }');
    const skill = recipient.skill;
    if (typeof skill !== 'string' || skill.length === 0)
      throw invalidOption(`${field}.skill`, 'a skill name (a non-empty string)', skill);
    const level = recipient.level ?? 1;
    if (!isLevel(level)) throw invalidOption(`${field}.level`, LEVEL, level);
    let best: ExpertRecord | undefined;
    let bestIsSender = false;
    for (const record of core.experts.values()) {
      // Own skills only (the object has no prototype): "toString" is nobody's skill.
      const has = record.def.skills[skill];
      if (
        has === undefined ||
        has < (level as number) ||
        !takesMessages(record) ||
        record.state === 'retired'
      )
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
      delivery.inMailbox = true;
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
    // Before the call: an ask the handler makes at once must see that this one is in hand.
    if (ask !== undefined) {
      ask.state = 'inline';
      ask.handler = self;
    }
    let out: unknown;
    let pending: boolean;
    this.#logged(delivery, 'inline');
    try {
      out = handler(delivery.msg, delivery.from.expert, new InlineContext(this, self));
      pending = isThenable(out);
    } catch (error) {
      self.ended = true;
      this.#handlerFailed(delivery, error);
      return;
    }
    if (!pending) {
      self.ended = true;
      this.#logged(delivery, undefined, MessageEnd.Done);
      if (ask !== undefined) this.#answer(ask, out);
      return;
    }
    // A thenable's own `then` runs here: it may throw, or call back twice (the ask settles once).
    new Promise((resolve) => resolve(out)).then(
      (value) => {
        self.ended = true;
        this.#logged(delivery, undefined, MessageEnd.Done);
        if (ask !== undefined) this.#answer(ask, value);
      },
      (error: unknown) => {
        self.ended = true;
        this.#handlerFailed(delivery, error);
      },
    );
  }

  /**
   * One heavy message at a time per receiver, on the pool, while the receiver is ready. The next
   * starts once no thread runs the last any more (a cancelled handler may run on for its grace).
   */
  #pumpHeavy(name: string, box: Box): void {
    if (box.heavyBusy || box.heavy.size === 0 || !this.#isReady(name)) return;
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
    const freed = (): void => {
      box.heavyBusy = false;
      this.#pumpHeavy(name, box);
    };
    const letter = delivery;
    this.#logged(letter, 'heavy');
    this.#core
      .executorOf(name)
      .message(name, letter.msg, letter.from.expert, {
        origin: self,
        signal: controller.signal,
        timeoutMs: record.def.timeoutMs ?? this.#core.options.timeoutMs,
        context: { task: { runId: letter.from.runId, from: letter.from.expert } },
        onFreed: freed,
      })
      .then(
        (value) => {
          this.#endFrame(self, undefined);
          this.#logged(letter, undefined, MessageEnd.Done);
          if (ask !== undefined) this.#answer(ask, value);
        },
        (error: unknown) => {
          const typed = wrapThrown(error, 'E_INTERNAL', name);
          this.#endFrame(self, typed);
          if (!letter.dropped) {
            this.#core.recordFault(record, typed);
            if (record.restartDue) record.ref?.send({ type: 'changed' });
          }
          this.#handlerFailed(letter, typed);
        },
      );
    // Waiting for a thread: if every thread is held by asks, this may be what they wait for.
    this.#checkDeadlock();
  }

  #handlerFailed(delivery: Delivery, error: unknown): void {
    const typed = wrapThrown(error, 'E_TASK_FAILED', `${delivery.to}.onMessage threw`, {
      expert: delivery.to,
    });
    this.#failed(delivery, typed);
  }

  /** A message could not be taken or answered: the asker gets the error; a tell is reported. */
  #failed(delivery: Delivery, error: TroupeError): void {
    this.#logged(delivery, undefined, MessageEnd.Failed);
    if (delivery.ask !== undefined) {
      this.#giveUp(delivery.ask, error);
      return;
    }
    if (delivery.dropped) return;
    this.counts.failed++;
    const { runId } = delivery.from;
    const from = delivery.from.expert;
    const to = delivery.to;
    if (runId !== undefined)
      this.#core.emit(runId, { type: 'message.failed', runId, from, to, error });
    const onMessageFailed = this.#core.onMessageFailed;
    if (onMessageFailed !== undefined) notify(onMessageFailed, { from, to, runId, error });
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
    this.#logged(ask.delivery, undefined, undefined, true);
    ask.delivery.dropped = true;
    this.#unbox(ask.delivery);
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

  #count(from: Frame, to: string, kind: 'tell' | 'ask'): Delivery['log'] {
    this.counts.sent++;
    if (from.runId === undefined) return undefined;
    const run = this.#core.runs.get(from.runId);
    if (run === undefined) return undefined;
    const entry = run.countMessage(from.expert, to, from.kind === 'task' ? from.index : -1, kind);
    return { log: run.messageLog, entry };
  }

  /**
   * A message's handler began (`handler`) or ended (`end`), or (`abandoned`) it was given up on
   * before any handler took it, in its run's message log.
   */
  #logged(
    delivery: Delivery,
    handler: 'inline' | 'heavy' | undefined,
    end?: 1 | 2,
    abandoned = false,
  ): void {
    const at = delivery.log;
    if (at === undefined) return;
    const run =
      delivery.from.runId === undefined ? undefined : this.#core.runs.get(delivery.from.runId);
    // Once its run has ended, the log is the outcome's: what happens after is not the run's.
    if (run === undefined || run.messageLog !== at.log) return;
    const now = run.elapsed();
    if (handler !== undefined) at.log.started(at.entry, handler, now);
    if (end !== undefined) at.log.ended(at.entry, end, now);
    if (abandoned) at.log.abandoned(at.entry, now);
  }

  // ---------------------------------------------------------------------------------------------
  // Deadlock

  /**
   * Fails the ask that closes a cycle of asks holding every thread of a pool, if there is one
   * (see findDeadlock). Runs again with every new ask and every heavy message queued.
   */
  #checkDeadlock(): void {
    // Cheap first: no pool can be full while fewer frames are held than its threads.
    if (this.#held.size < this.#fewestThreads) return;
    const found = findDeadlock(this.#held, (expert) => this.#core.executorOf(expert));
    if (found === undefined) return;
    const { victim, threads, chain } = found;
    this.#giveUp(
      victim,
      new TroupeError(
        'E_ASK_DEADLOCK',
        `${victim.from.expert} asked ${victim.to}, but a cycle of asks holds every thread (${threads}): ${chain}`,
        { details: { from: victim.from.expert, to: victim.to, threads } },
      ),
    );
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
    let timeoutMs: unknown;
    try {
      timeoutMs = askTimeout(options, 'ctx.ask(options)');
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#router.ask(this.#frame, to, msg, timeoutMs, 'ctx.ask') as Promise<T>;
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

/** Keys of a recipient given by skill. */
const RECIPIENT_KEYS = ['skill', 'level'] as const;

/** An ask's `timeoutMs`, read once from its options (undefined: the troupe's default). */
function askTimeout(options: unknown, field: string): unknown {
  if (options === undefined) return undefined;
  return readFields(options, field, ['timeoutMs'], 'an object { timeoutMs? }').timeoutMs;
}
