/**
 * The coordinator's side of the Redis executor: the troupe's work goes out as BullMQ jobs (one
 * queue per expert) and comes back, with the attempts' `ctx` calls, on this coordinator's own
 * stream. It keeps one entry per job it handed out until the job settles, and it decides alone
 * whether a job may start: a worker claims each job before running it, and a job that has
 * settled (cancelled, for one) is answered `skip`, so that no work outlives its settlement
 * however the worker and the cancel cross. The first result of a job settles it; any later one
 * (a job run twice after a stall) is counted and dropped.
 */
import { randomUUID } from 'node:crypto';
import {
  deserializeError,
  isTroupeError,
  messageOf,
  serializeError,
  TroupeError,
  wrapThrown,
} from '../../errors.js';
import type { Settled } from '../../pool/jobs.js';
import type { ContextHost, PoolCloseOptions, PoolRunOptions } from '../../pool/options.js';
import type { MessageInput } from '../../pool/protocol.js';
import type { Executor } from '../executor.js';
import {
  COORDINATOR_TTL_MS,
  type Connection,
  encode,
  type JobData,
  type JobKind,
  type JobPayload,
  Keys,
  loadPeers,
  readInbox,
  redisOptions,
  scrub,
  type ToCoordinator,
  type ToWorker,
  tooLarge,
  type WorkerEntry,
  whenReady,
} from './wire.js';

/** What the executor was made with (see `redisExecutor`, options.ts). */
export interface RedisSettings {
  connection: Connection;
  prefix: string;
  maxPayloadBytes: number;
  unavailableAfterMs: number;
  /** Threads counted before any worker has registered (lookahead, the ask deadlock check). */
  threads: number;
  /** Times a job whose worker died is run again before it fails E_WORKER_CRASHED. */
  maxStalls: number;
  /** How long a cancelled job's worker has to say it stopped before its entry is let go, ms. */
  releaseAfterMs: number;
}

interface Entry {
  key: string;
  kind: JobKind;
  expert: string;
  origin: unknown;
  settled: Settled;
  onFreed: (() => void) | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** 'queued' until a worker's claim is answered `go`; then the worker that runs it. */
  worker: string | undefined;
  /** Settled already (cancelled): kept only until its worker says it is done with it. */
  done: boolean;
  /** Times its job was claimed again after its worker died. */
  stalls: number;
  /** Recalled from the worker that holds it (once per holder: see #rebalance). */
  recalled: boolean;
}

type RedisClient = InstanceType<ReturnType<typeof loadPeers>['Redis']>;
// biome-ignore lint/suspicious/noExplicitAny: BullMQ's generic Queue, as its constructor returns it
type Queue = import('bullmq').Queue<any, any, string>;

/** How often the registry of workers is read, ms: the threads the coordinator counts on. */
const REGISTRY_POLL_MS = 1_000;

export class RedisExecutor implements Executor {
  readonly id = randomUUID();
  readonly #settings: RedisSettings;
  readonly #keys: Keys;
  readonly #host: ContextHost;
  readonly #experts: ReadonlySet<string>;
  readonly #cmd: RedisClient;
  readonly #reader: RedisClient;
  readonly #queues = new Map<string, Queue>();
  readonly #entries = new Map<string, Entry>();
  readonly #lanes = new Map<string, number>();
  readonly #inbox: string;
  #seq = 0;
  #threads: number;
  /** Live workers serving any of these experts, by id, as the registry said last. */
  #live = new Map<string, { threads: number; experts: ReadonlySet<string> }>();
  /** Jobs of this coordinator each worker holds (claimed, not yet ended or given back). */
  readonly #held = new Map<string, Set<Entry>>();
  #closed = false;
  /** When Redis was first found unreachable in the current outage (undefined: reachable). */
  #downSince: number | undefined;
  #downError: unknown;
  readonly #ready: Promise<void>;
  #readerDone: Promise<void> = Promise.resolve();
  #poll: NodeJS.Timeout | undefined;

  constructor(settings: RedisSettings, experts: readonly string[], host: ContextHost) {
    const { bullmq, Redis } = loadPeers('redisExecutor');
    this.#settings = settings;
    this.#keys = new Keys(settings.prefix);
    this.#host = host;
    this.#experts = new Set(experts);
    this.#threads = settings.threads;
    this.#inbox = this.#keys.coordinator(this.id);
    const { connection } = settings;
    this.#cmd = new Redis(connection.url, redisOptions(connection, false) as never);
    this.#reader = new Redis(connection.url, redisOptions(connection, true) as never);
    // ioredis reports every failed reconnect as an 'error' event: unobserved, one would crash
    // the process. They are seen through the commands that fail (see #unavailable).
    for (const client of [this.#cmd, this.#reader]) client.on('error', () => {});
    for (const expert of experts) {
      const queue = new bullmq.Queue(this.#keys.queue(expert), {
        connection: this.#cmd as never,
        prefix: settings.prefix,
        skipVersionCheck: true,
      });
      queue.on('error', () => {});
      this.#queues.set(expert, queue);
    }
    this.#ready = Promise.all([
      whenReady(this.#cmd, settings.unavailableAfterMs),
      whenReady(this.#reader, settings.unavailableAfterMs),
    ]).then(
      () => {
        // The inbox: claims, `ctx` calls and results, read in order until the executor closes.
        this.#readerDone = readInbox({
          reader: this.#reader,
          cmd: this.#cmd,
          key: this.#inbox,
          blockMs: 1_000,
          going: () => !this.#closed,
          onMessage: (message) => this.#take(message as ToCoordinator),
          onError: (error) => this.#noteDown(error),
          onRead: () => {
            if (this.#downSince !== undefined) this.#up();
          },
        });
        this.#poll = setInterval(() => void this.#pollRegistry(), REGISTRY_POLL_MS);
        this.#poll.unref();
        void this.#pollRegistry();
      },
      (error: unknown) => {
        this.#downSince = Date.now();
        this.#downError = error;
        throw this.#unavailableError(error);
      },
    );
    // Awaited by every job; a failure here is each job's, never an unhandled rejection.
    this.#ready.catch(() => {});
  }

  /** Resolves once both connections are up; rejects E_UNAVAILABLE when Redis cannot be reached. */
  ready(): Promise<void> {
    return this.#ready;
  }

  get threads(): number {
    return this.#threads;
  }

  aheadOf(): number {
    return 1;
  }

  runThen(name: string, input: unknown, options: PoolRunOptions, settled: Settled): void {
    this.#submit('run', name, { input, context: options.context }, options, settled);
  }

  message(
    name: string,
    msg: unknown,
    from: string,
    options: PoolRunOptions = {},
  ): Promise<unknown> {
    const input: MessageInput = { msg, from };
    return new Promise((resolve, reject) => {
      this.#submit('message', name, { input, context: options.context }, options, (error, value) =>
        error === undefined ? resolve(value) : reject(error),
      );
    });
  }

  probe(
    name: string,
    options: Pick<PoolRunOptions, 'signal' | 'timeoutMs'> & { requires?: string[] } = {},
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.#submit(
        'probe',
        name,
        { input: undefined, context: undefined, requires: options.requires },
        { signal: options.signal, timeoutMs: options.timeoutMs },
        (error, value) => (error === undefined ? resolve(value) : reject(error)),
      );
    });
  }

  #submit(
    kind: JobKind,
    expert: string,
    payload: Pick<JobPayload, 'input' | 'context' | 'requires'>,
    options: PoolRunOptions,
    settled: Settled,
  ): void {
    const key = `${this.id}.${++this.#seq}`;
    const entry: Entry = {
      key,
      kind,
      expert,
      origin: options.origin,
      settled,
      onFreed: options.onFreed,
      signal: options.signal,
      onAbort: undefined,
      worker: undefined,
      done: false,
      stalls: 0,
      recalled: false,
    };
    const admitted = this.#admit(kind, expert, payload, options);
    if (admitted instanceof TroupeError) {
      // Refusals settle in a microtask, like results (as on the pool).
      queueMicrotask(() => {
        settled(admitted, undefined, 0, options.origin, -1);
        options.onFreed?.();
      });
      return;
    }
    const { queue, bytes } = admitted;
    this.#entries.set(key, entry);
    if (options.signal !== undefined) {
      entry.onAbort = () => this.#cancel(entry);
      options.signal.addEventListener('abort', entry.onAbort, { once: true });
    }
    const data: JobData = {
      c: this.id,
      p: bytes.toString('base64'),
      l: this.#settings.maxPayloadBytes,
    };
    this.#ready
      .then(() =>
        queue.add(kind, data, {
          jobId: key,
          removeOnComplete: true,
          removeOnFail: true,
          attempts: 1,
        }),
      )
      .then(
        () => {
          if (this.#downSince !== undefined && this.#entries.size > 0) this.#up();
        },
        (error: unknown) => {
          this.#noteDown(error);
          this.#finish(entry, this.#unavailableError(error), undefined, 0, -1);
        },
      );
  }

  /** A job's queue and bytes, or why it is refused before it is queued. */
  #admit(
    kind: JobKind,
    expert: string,
    payload: Pick<JobPayload, 'input' | 'context' | 'requires'>,
    options: PoolRunOptions,
  ): { queue: Queue; bytes: Buffer } | TroupeError {
    if (this.#closed) return new TroupeError('E_CLOSED', 'the Redis executor is closed');
    const queue = this.#queues.get(expert);
    if (queue === undefined)
      return new TroupeError('E_INTERNAL', `redisExecutor: no queue for "${expert}"`);
    if (options.signal?.aborted)
      return new TroupeError('E_CANCELLED', `${expert}: cancelled before it was queued`);
    if (this.#downSince !== undefined && this.#downFor() >= this.#settings.unavailableAfterMs)
      return this.#unavailableError(this.#downError);
    let bytes: Buffer;
    try {
      const full: JobPayload = {
        kind,
        timeoutMs: options.timeoutMs,
        ...payload,
        ...(kind === 'message' ? { from: (payload.input as MessageInput).from } : {}),
      };
      bytes = encode(full, `${expert}'s input`);
    } catch (error) {
      return wrapThrown(error, 'E_NOT_CLONEABLE', expert);
    }
    const limit = this.#settings.maxPayloadBytes;
    if (bytes.length > limit) return tooLarge(`${expert}'s input`, bytes.length, limit);
    return { queue, bytes };
  }

  /** A job's signal fired: it settles as cancelled now, and never starts later. */
  #cancel(entry: Entry): void {
    if (entry.done || !this.#entries.has(entry.key)) return;
    const worker = entry.worker;
    const error = new TroupeError('E_CANCELLED', `${entry.expert}: cancelled`);
    if (worker === undefined) {
      // Not claimed: a later claim finds no entry and is told to skip it; the job goes.
      this.#finish(entry, error, undefined, 0, -1);
      const queue = this.#queues.get(entry.expert);
      queue?.remove(entry.key).catch(() => {});
      return;
    }
    // Running on a worker: settled now, as on the pool; its worker aborts it (ctx.signal), and
    // its entry stays until the worker is done with it (the heavy queue waits for that).
    entry.done = true;
    this.#detach(entry);
    entry.settled(error, undefined, 0, entry.origin, -1);
    this.#tell(worker, { t: 'cancel', k: entry.key });
    // A worker that died says nothing: its entry (and what waits for it to be freed) goes then.
    setTimeout(
      () => this.#finish(entry, undefined, undefined, 0, -1),
      this.#settings.releaseAfterMs,
    ).unref();
  }

  /** Settles a job once: its entry goes, its signal is let go, and it is freed. */
  #finish(
    entry: Entry,
    error: TroupeError | undefined,
    value: unknown,
    runMs: number,
    thread: number,
  ): void {
    if (this.#entries.get(entry.key) !== entry) return;
    this.#entries.delete(entry.key);
    this.#holds(entry, undefined);
    this.#detach(entry);
    if (!entry.done) {
      entry.done = true;
      try {
        entry.settled(error, value, runMs, entry.origin, thread);
      } catch {
        // The runtime's callbacks do not throw; nothing of theirs may stop the reader.
      }
    }
    entry.onFreed?.();
  }

  #detach(entry: Entry): void {
    if (entry.onAbort !== undefined) entry.signal?.removeEventListener('abort', entry.onAbort);
    entry.onAbort = undefined;
  }

  #take(message: ToCoordinator): void {
    const entry = this.#entries.get(message.k);
    switch (message.t) {
      case 'claim': {
        // Only a job still to run may start: settled ones (cancelled), unknown ones (another
        // coordinator's run before a restart) are skipped. A job claimed again (its first
        // worker stalled) goes to the new claimant.
        let go = entry !== undefined && !entry.done;
        if (go && entry !== undefined && entry.worker !== undefined) {
          // Claimed before: the worker that ran it died and BullMQ gave the job to another.
          if (++entry.stalls > this.#settings.maxStalls) {
            go = false;
            const error = new TroupeError(
              'E_WORKER_CRASHED',
              `${entry.expert}: the worker processes running it died ${entry.stalls} times (its job was run again ${this.#settings.maxStalls} times, maxStalls)`,
              { details: { stalls: entry.stalls } },
            );
            this.#finish(entry, error, undefined, 0, -1);
          }
        }
        if (
          go &&
          entry !== undefined &&
          entry.worker === undefined &&
          message.a === 1 &&
          this.#better(message.w, entry.expert)
        ) {
          // Taken ahead of its threads while another worker has one free: it goes back to
          // its queue, for that one.
          this.#tell(message.w, { t: 'back', k: message.k });
          return;
        }
        if (go && entry !== undefined) this.#holds(entry, message.w);
        this.#tell(message.w, { t: go ? 'go' : 'skip', k: message.k });
        return;
      }
      case 'back':
        // Given back unstarted by the worker that claimed it: the next claim is not a stall. One
        // cancelled since was waiting only for that worker to be done with it.
        if (entry === undefined || entry.worker !== message.w) return;
        if (entry.done) this.#finish(entry, undefined, undefined, 0, -1);
        else this.#holds(entry, undefined);
        return;
      case 'ctx':
        this.#serveCall(entry, message);
        return;
      case 'end': {
        // A job already settled (run again after a stall, at least once): its result is dropped.
        if (entry === undefined) return;
        const thread = this.#lane(message.w, message.thread);
        const error =
          message.ok || message.e === undefined
            ? undefined
            : wrapThrown(deserializeError(message.e), 'E_INTERNAL', entry.expert);
        this.#finish(entry, error, message.ok ? message.v : undefined, message.runMs, thread);
        return;
      }
    }
  }

  async #serveCall(
    entry: Entry | undefined,
    message: Extract<ToCoordinator, { t: 'ctx' }>,
  ): Promise<void> {
    let answer: ToWorker;
    try {
      if (entry === undefined || entry.done)
        throw new TroupeError(
          'E_CANCELLED',
          `ctx.${message.op}: the task has already ended (cancelled or timed out)`,
        );
      const thread = this.#lane(message.w, message.thread);
      const value = await this.#host.call(
        entry.origin,
        entry.expert,
        message.op,
        message.args,
        thread,
      );
      answer = { t: 'ctxr', id: message.id, ok: true, v: value };
    } catch (error) {
      answer = { t: 'ctxr', id: message.id, ok: false, e: serializeError(error) };
    }
    this.#tell(message.w, answer);
  }

  /** One number per worker thread, in the order they were first heard of (trace lanes). */
  #lane(worker: string, thread: number): number {
    if (thread < 0) return -1;
    const name = `${worker}/${thread}`;
    let lane = this.#lanes.get(name);
    if (lane === undefined) {
      lane = this.#lanes.size;
      this.#lanes.set(name, lane);
    }
    return lane;
  }

  #tell(worker: string, message: ToWorker): void {
    let bytes: Buffer;
    try {
      bytes = encode(message, 'an answer');
    } catch {
      bytes = encode(
        {
          t: 'ctxr',
          id: (message as { id?: number }).id ?? -1,
          ok: false,
          e: serializeError(new TroupeError('E_NOT_CLONEABLE', 'the answer cannot be sent')),
        },
        'an answer',
      );
    }
    this.#cmd
      .xadd(this.#keys.worker(worker), 'MAXLEN', '~', 100_000, '*', 'd', bytes)
      .catch((error: unknown) => this.#noteDown(error));
  }

  #heldBy(worker: string): number {
    return this.#held.get(worker)?.size ?? 0;
  }

  /** Who holds the entry's job now (undefined: nobody, or it has gone). */
  #holds(entry: Entry, worker: string | undefined): void {
    const was = entry.worker;
    if (was === worker) return;
    entry.worker = worker;
    entry.recalled = false;
    if (worker !== undefined) {
      const set = this.#held.get(worker);
      if (set === undefined) this.#held.set(worker, new Set([entry]));
      else set.add(entry);
    }
    if (was === undefined) return;
    const set = this.#held.get(was);
    set?.delete(entry);
    if (set?.size === 0) this.#held.delete(was);
    this.#rebalance(was);
  }

  /**
   * `freed` holds fewer jobs than its threads: the jobs of experts it serves that other workers
   * hold past their threads (taken ahead) are recalled, to run where a thread is free. Which of
   * a holder's jobs have started only it knows: it gives back those still waiting (and says
   * `back` for each) and ignores the recall of the others. Each is recalled once per holder.
   */
  #rebalance(freed: string): void {
    const free = this.#live.get(freed);
    if (free === undefined) return;
    // Twice the free threads: some of those recalled may have started (then the recall is
    // ignored), and a worker takes one job ahead per thread.
    let budget = 2 * (free.threads - this.#heldBy(freed));
    if (budget <= 0) return;
    for (const [holder, entries] of this.#held) {
      const threads = this.#live.get(holder)?.threads;
      if (holder === freed || threads === undefined || entries.size <= threads) continue;
      for (const entry of entries) {
        if (entry.done || entry.recalled || !free.experts.has(entry.expert)) continue;
        entry.recalled = true;
        this.#tell(holder, { t: 'recall', k: entry.key });
        if (--budget === 0) return;
      }
    }
  }

  /**
   * Whether a job of `expert` that `worker` claimed ahead of its threads (to overlap its trip
   * with the runs under way: the claim says so) should go to another worker instead: one that is
   * live, serves the expert, and holds fewer jobs of this coordinator than its threads. Jobs held
   * for other coordinators are not seen: a worker busy with those looks free.
   */
  #better(worker: string, expert: string): boolean {
    if (!this.#live.has(worker)) return false;
    for (const [id, other] of this.#live)
      if (id !== worker && other.experts.has(expert) && this.#heldBy(id) < other.threads)
        return true;
    return false;
  }

  async #pollRegistry(): Promise<void> {
    try {
      // This coordinator's heartbeat: a worker waiting for its answer to a claim waits on while
      // it beats, and drops the job once it has stopped (docs/distributed.md).
      this.#cmd
        .hset(this.#keys.coordinators, this.id, String(Date.now() + COORDINATOR_TTL_MS))
        .catch(() => {});
      const all = await this.#cmd.hgetall(this.#keys.workers);
      const now = Date.now();
      let threads = 0;
      const live = new Map<string, { threads: number; experts: ReadonlySet<string> }>();
      for (const json of Object.values(all)) {
        // An entry that is not a worker's (another writer under the prefix) counts for nothing.
        const entry = parseEntry(json);
        if (entry === undefined || entry.until < now) continue;
        if (!entry.experts.some((name) => this.#experts.has(name))) continue;
        threads += entry.threads;
        live.set(entry.id, { threads: entry.threads, experts: new Set(entry.experts) });
      }
      this.#live = live;
      this.#threads = Math.max(1, threads || this.#settings.threads);
    } catch (error) {
      this.#noteDown(error);
    }
  }

  #downFor(): number {
    return this.#downSince === undefined ? 0 : Date.now() - this.#downSince;
  }

  /**
   * A command failed for want of Redis. Past `unavailableAfterMs` of outage every job not
   * settled fails E_UNAVAILABLE (retried by its run like a crash): its result may never come.
   */
  #noteDown(error: unknown): void {
    if (this.#closed) return;
    this.#downSince ??= Date.now();
    this.#downError = error;
    if (this.#downFor() < this.#settings.unavailableAfterMs) return;
    const failed = this.#unavailableError(error);
    for (const entry of [...this.#entries.values()]) this.#finish(entry, failed, undefined, 0, -1);
  }

  #up(): void {
    this.#downSince = undefined;
    this.#downError = undefined;
  }

  #unavailableError(error: unknown): TroupeError {
    if (isTroupeError(error, 'E_UNAVAILABLE')) return error;
    const { connection } = this.#settings;
    const why = scrub(messageOf(error), connection);
    return new TroupeError(
      'E_UNAVAILABLE',
      `Redis at ${connection.safe} cannot be reached (${why}); the work's result may never come`,
      { details: { redis: connection.safe } },
    );
  }

  async close(options: PoolCloseOptions = {}): Promise<void> {
    if (this.#closed) return;
    const timeoutMs = options.force === true ? 0 : (options.timeoutMs ?? 30_000);
    // Work under way may finish within the time given; then the rest is cancelled.
    if (this.#entries.size > 0 && timeoutMs > 0) {
      const deadline = Date.now() + timeoutMs;
      while (this.#entries.size > 0 && Date.now() < deadline && this.#downSince === undefined)
        await new Promise((resolve) => setTimeout(resolve, 10));
    }
    this.#closed = true;
    clearInterval(this.#poll);
    const closed = new TroupeError('E_CLOSED', 'the Redis executor closed before the task ended');
    for (const entry of [...this.#entries.values()]) {
      if (entry.worker !== undefined) this.#tell(entry.worker, { t: 'cancel', k: entry.key });
      else
        this.#queues
          .get(entry.expert)
          ?.remove(entry.key)
          .catch(() => {});
      this.#finish(entry, closed, undefined, 0, -1);
    }
    // With Redis away, BullMQ's close and QUIT would wait for it: a second at most, then cut.
    const reachable = this.#cmd.status === 'ready';
    if (reachable) {
      await withTimeout(
        Promise.allSettled([...this.#queues.values()].map((queue) => queue.close())),
        1_000,
      );
      await withTimeout(this.#cmd.del(this.#inbox), 1_000).catch(() => {});
      // Gone: a worker still waiting for an answer from it drops the job at once.
      await withTimeout(this.#cmd.hdel(this.#keys.coordinators, this.id), 1_000).catch(() => {});
    }
    this.#reader.disconnect();
    // A read queued while Redis was away may never be answered: the loop ends at its next turn.
    await withTimeout(this.#readerDone, 1_000).catch(() => {});
    if (reachable) await withTimeout(this.#cmd.quit(), 1_000).catch(() => {});
    this.#cmd.disconnect();
  }
}

/** `promise`, or undefined after `ms` (what it was doing is then abandoned). */
export function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A worker's registry entry, or undefined for anything else. */
function parseEntry(json: string): WorkerEntry | undefined {
  try {
    const entry = JSON.parse(json) as Partial<WorkerEntry> | null;
    if (
      entry !== null &&
      typeof entry === 'object' &&
      typeof entry.until === 'number' &&
      typeof entry.id === 'string' &&
      Number.isInteger(entry.threads) &&
      (entry.threads as number) > 0 &&
      Array.isArray(entry.experts)
    )
      return entry as WorkerEntry;
  } catch {
    // not JSON
  }
  return undefined;
}
