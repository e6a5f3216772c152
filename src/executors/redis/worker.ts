/**
 * The worker's side of the Redis executor (`troupe worker`): it takes jobs of the experts it
 * serves from their BullMQ queues, claims each from the coordinator that sent it (which says go
 * or skip), runs it on its own local pool — the same worker entry, the same classified failures
 * and the same `ctx`, whose calls travel back to the coordinator — and sends the result back.
 * It runs only the experts it was started with: a job names an expert, never a module.
 *
 * A worker killed mid-job leaves the job locked; BullMQ's stalled check (run by the other
 * workers) puts it back in its queue once the lock lapses, and the next worker to take it
 * claims it again: the coordinator says go to a job still to run, so the attempt runs again on
 * another machine (at least once; the coordinator keeps the first result).
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ResolvedExpert } from '../../actors/experts.js';
import {
  describe,
  deserializeError,
  messageOf,
  serializeError,
  TroupeError,
  wrapThrown,
} from '../../errors.js';
import type { ContextHost } from '../../pool/options.js';
import { createPool, type Pool } from '../../pool/pool.js';
import type { ContextOp } from '../../pool/protocol.js';
import { withTimeout } from './executor.js';
import { type Handled, type Intake, startIntake, type TakenJob } from './intake.js';
import {
  type Connection,
  decode,
  encode,
  type JobData,
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

/** What {@link startRedisWorker} is started with, checked already (by redisWorker or troupe worker). */
export interface WorkerSettings {
  connection: Connection;
  prefix: string;
  experts: readonly ResolvedExpert[];
  /** Threads of the local pool. */
  threads: number;
  /**
   * Jobs held at once, across the experts' queues: past `threads`, the next jobs' trips through
   * Redis overlap the runs under way (prefetch). Those past the threads are given back while a
   * thread of this worker waits on an ask (see `startRedisWorker`).
   */
  concurrency: number;
  /** BullMQ's lock on a job being run, ms: a dead worker's job is taken again after it lapses. */
  lockDurationMs: number;
  /** How often this worker looks for jobs whose lock lapsed, ms. */
  stalledIntervalMs: number;
  /** How long a claim waits for its coordinator's answer, ms; unanswered, the job is dropped. */
  claimTimeoutMs: number;
  /** How long to wait for Redis at start, ms. */
  connectTimeoutMs: number;
  log: (line: string) => void;
}

/** A running worker. */
export interface RedisWorker {
  readonly id: string;
  /** Subtask attempts done and failed, jobs skipped (settled already), probes and heavy messages run. */
  readonly served: {
    done: number;
    failed: number;
    skipped: number;
    probes: number;
    messages: number;
    /** Jobs taken ahead and given back, not run (a thread of this worker waited on an ask). */
    back: number;
  };
  /**
   * Stops taking jobs, lets those under way finish for up to `timeoutMs`, then stops: jobs still
   * running are left to BullMQ's stalled check, so another worker runs them. Resolves `drained`
   * false when some were left.
   */
  close(timeoutMs: number): Promise<{ drained: boolean }>;
}

/** A coordinator's answer to a claim. */
type Claimed = 'go' | 'skip' | 'back';

interface Running {
  key: string;
  coordinator: string;
  controller: AbortController;
  /** Its ctx calls waiting for their answers (rejected when it ends: nobody will read them). */
  calls: Set<number>;
}

/**
 * A local pool as the intake and the start gate count it: its jobs held (taken, not ended) and
 * started, and the jobs claimed that wait for one of its threads.
 */
interface Slots {
  readonly threads: number;
  held: number;
  started: number;
  /** Whether it may hold jobs past its threads (not after the coordinator sent one back). */
  ahead: boolean;
  readonly ready: Array<(how: 'start' | 'back') => void>;
}

type RedisClient = InstanceType<ReturnType<typeof loadPeers>['Redis']>;

/** How often the worker's entry in the registry is refreshed, and how long it lasts, ms. */
const HEARTBEAT_MS = 2_000;
const ENTRY_TTL_MS = 6_000;

/**
 * Starts a worker: connects (E_UNAVAILABLE if Redis cannot be reached within
 * `connectTimeoutMs`), starts its pool and begins taking jobs.
 */
export async function startRedisWorker(options: WorkerSettings): Promise<RedisWorker> {
  const { bullmq, Redis } = loadPeers('troupe worker');
  const { connection, log } = options;
  const keys = new Keys(options.prefix);
  const id = randomUUID();
  const inbox = keys.worker(id);
  const cmd: RedisClient = new Redis(connection.url, {
    ...redisOptions(connection, true),
    connectTimeout: options.connectTimeoutMs,
    retryStrategy: () => null,
  } as never);
  cmd.on('error', () => {});
  try {
    await whenReady(cmd, options.connectTimeoutMs);
    await cmd.ping();
  } catch (error) {
    cmd.disconnect();
    throw new TroupeError(
      'E_UNAVAILABLE',
      `troupe worker: Redis at ${connection.safe} cannot be reached (${scrub(messageOf(error), connection)})`,
      { details: { redis: connection.safe } },
    );
  }
  // From now on, reconnect after an outage instead of giving up.
  (cmd.options as { retryStrategy: unknown }).retryStrategy = (times: number) =>
    Math.min(times * 100, 1_000);
  const reader: RedisClient = new Redis(connection.url, redisOptions(connection, true) as never);
  reader.on('error', () => {});
  const bull: RedisClient = new Redis(connection.url, redisOptions(connection, true) as never);
  bull.on('error', () => {});

  const running = new Map<string, Running>();
  const claims = new Map<string, (answer: Claimed) => void>();
  const calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let callSeq = 0;
  const served = { done: 0, failed: 0, skipped: 0, probes: 0, messages: 0, back: 0 };
  // ctx.ask calls under way on this worker's threads: while there are any, no job waits here
  // for a thread (see giveBack).
  let asks = 0;
  let closing = false;

  const send = (coordinator: string, message: ToCoordinator): Promise<unknown> =>
    cmd.xadd(
      keys.coordinator(coordinator),
      'MAXLEN',
      '~',
      100_000,
      '*',
      'd',
      encode(message, 'a message'),
    );

  // A handler's ctx calls go to the coordinator that sent its job, and wait for its answer.
  const host: ContextHost = {
    call(origin, _module, op: ContextOp, args, thread) {
      const job = origin as Running;
      const callId = ++callSeq;
      const answered = new Promise((resolve, reject) => {
        calls.set(callId, { resolve, reject });
        job.calls.add(callId);
        send(job.coordinator, { t: 'ctx', k: job.key, w: id, id: callId, op, args, thread }).catch(
          (error: unknown) => {
            calls.delete(callId);
            job.calls.delete(callId);
            reject(wrapThrown(error, 'E_UNAVAILABLE', `ctx.${op}: Redis`));
          },
        );
      });
      answered.then(
        () => job.calls.delete(callId),
        () => job.calls.delete(callId),
      );
      if (op !== 'ask') return answered;
      if (++asks === 1) giveBack();
      const done = (): void => {
        if (--asks === 0) intake.pump();
      };
      answered.then(done, done);
      return answered;
    },
  };

  // The experts with resourceLimits run on threads of their own, as in a local troupe.
  const pools = new Map<string, Pool>();
  const slotsOf = new Map<string, Slots>();
  const shared = options.experts.filter((e) => e.resourceLimits === undefined);
  const modules = (of: readonly ResolvedExpert[]) =>
    Object.fromEntries(of.map((e) => [e.name, { url: e.href, batch: e.batch }]));
  const common = { host, maxOutputBytes: Number.POSITIVE_INFINITY };
  const slots = (threads: number): Slots => ({
    threads,
    held: 0,
    started: 0,
    ahead: true,
    ready: [],
  });
  if (shared.length > 0) {
    const pool = createPool({ ...common, threads: options.threads, modules: modules(shared) });
    const counted = slots(options.threads);
    for (const e of shared) {
      pools.set(e.name, pool);
      slotsOf.set(e.name, counted);
    }
  }
  for (const e of options.experts)
    if (e.resourceLimits !== undefined) {
      const threads = Math.min(e.concurrency, options.threads);
      const pool = createPool({
        ...common,
        threads,
        modules: modules([e]),
        resourceLimits: e.resourceLimits,
      });
      pools.set(e.name, pool);
      slotsOf.set(e.name, slots(threads));
    }
  // Jobs a pool may hold past its threads: none while a thread waits on an ask.
  const ahead = Math.max(0, options.concurrency - options.threads);
  const room = (of: Slots): boolean =>
    of.held < Math.min(of.threads, options.concurrency) + (asks > 0 || !of.ahead ? 0 : ahead);

  // The start gate: a claimed job starts when its pool has a thread for it, in claim order.
  // `keep`: it cannot be given back (its coordinator could not be told): it waits for a thread.
  const startWhenFree = (of: Slots, state: Running, keep = false): Promise<'start' | 'back'> =>
    new Promise((resolve) => {
      if (of.started < of.threads && of.ready.length === 0) {
        of.started++;
        resolve('start');
        return;
      }
      if (!keep && (asks > 0 || closing)) {
        resolve('back');
        return;
      }
      if (!keep && recalled.delete(state.key)) {
        of.ahead = false;
        resolve('back');
        return;
      }
      const signal = state.controller.signal;
      const waiter = (how: 'start' | 'back'): void => {
        signal.removeEventListener('abort', onAbort);
        recalls.delete(state.key);
        resolve(how);
      };
      const leave = (): void => {
        const at = of.ready.indexOf(waiter);
        if (at >= 0) of.ready.splice(at, 1);
        waiter('back');
      };
      const onAbort = leave;
      signal.addEventListener('abort', onAbort, { once: true });
      // Its coordinator may recall it while it waits (another worker's thread came free).
      if (!keep)
        recalls.set(state.key, () => {
          of.ahead = false;
          leave();
        });
      if (keep) kept.add(waiter);
      of.ready.push(waiter);
    });
  const kept = new WeakSet<(how: 'start' | 'back') => void>();
  const recalls = new Map<string, () => void>();
  const recalled = new Set<string>();
  const startNext = (of: Slots): void => {
    // Closing: what waits for a thread goes back to its queue, for another worker.
    if (closing) giveBack();
    while (of.started < of.threads && of.ready.length > 0) {
      of.started++;
      (of.ready.shift() as (how: 'start') => void)('start');
    }
  };
  // A thread of this worker waits on an ask: the jobs waiting here for a thread go back to
  // their queues, for idle workers to take. Held here, they would wait behind the asker, and
  // the ask could wait for one of them (a heavy receiver's message) where the coordinator's
  // deadlock check, which counts every worker's threads, sees no deadlock.
  const giveBack = (): void => {
    for (const of of new Set(slotsOf.values())) {
      const waiting = of.ready.splice(0);
      for (const waiter of waiting) {
        if (kept.has(waiter)) of.ready.push(waiter);
        else waiter('back');
      }
    }
  };

  // The inbox: the coordinators' go or skip, ctx answers and cancels; read until the jobs under
  // way and their claims have their answers.
  const take = (message: ToWorker): void => {
    if (message.t === 'go' || message.t === 'skip' || message.t === 'back') {
      claims.get(message.k)?.(message.t);
      claims.delete(message.k);
    } else if (message.t === 'cancel') running.get(message.k)?.controller.abort();
    else if (message.t === 'recall') {
      const recall = recalls.get(message.k);
      // Read with its go, before the job reached the start gate: it is given back there.
      if (recall === undefined) {
        if (running.has(message.k)) recalled.add(message.k);
      } else recall();
    } else if (message.t === 'ctxr') {
      const waiter = calls.get(message.id);
      calls.delete(message.id);
      if (waiter === undefined) return;
      if (message.ok) waiter.resolve(message.v);
      else waiter.reject(deserializeError(message.e ?? { name: 'Error', message: 'no answer' }));
    }
  };
  const readLoop = readInbox({
    reader,
    cmd,
    key: inbox,
    blockMs: 500,
    going: () => !closing || running.size > 0 || claims.size > 0,
    onMessage: (message) => take(message as ToWorker),
    onError: () => {},
    onRead: () => {},
  });

  // Whether a coordinator still beats (its heartbeat in the registry of coordinators).
  const alive = async (coordinator: string): Promise<boolean> => {
    try {
      const until = Number(await cmd.hget(keys.coordinators, coordinator));
      return Number.isFinite(until) && until > Date.now();
    } catch {
      return true; // Redis away: not a sign the coordinator is gone; asked again later
    }
  };

  // Unanswered for claimTimeoutMs, a claim asks whether its coordinator still beats: if it does
  // (its answer is late: a busy event loop), it waits on; if not, the job is dropped (skip).
  const claim = (key: string, coordinator: string, ahead: boolean): Promise<Claimed> =>
    new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wait = (): void => {
        timer = setTimeout(async () => {
          if (!claims.has(key)) return;
          if (!closing && (await alive(coordinator))) {
            if (claims.has(key)) wait();
            return;
          }
          claims.delete(key);
          resolve('skip');
        }, options.claimTimeoutMs);
      };
      wait();
      claims.set(key, (answer) => {
        clearTimeout(timer);
        resolve(answer);
      });
      send(coordinator, { t: 'claim', k: key, w: id, ...(ahead ? { a: 1 as const } : {}) }).catch(
        () => {
          clearTimeout(timer);
          claims.delete(key);
          resolve('skip');
        },
      );
    });

  const expertOf = new Map(options.experts.map((e) => [keys.queue(e.name), e.name]));
  const slotsOfQueue = (queue: string): Slots =>
    slotsOf.get(expertOf.get(queue) as string) as Slots;

  // Counted held from the moment the intake hands it over (synchronously) to its end.
  const handle = (job: TakenJob): Promise<Handled> => {
    const of = slotsOfQueue(job.queue);
    of.held++;
    return serve(job, of).finally(() => {
      of.held--;
    });
  };

  const serve = async (job: TakenJob, of: Slots): Promise<Handled> => {
    const key = job.id;
    const data = job.data as Partial<JobData> | null;
    const expert = expertOf.get(job.queue);
    if (
      key === undefined ||
      expert === undefined ||
      data === null ||
      typeof data !== 'object' ||
      typeof data.c !== 'string' ||
      typeof data.p !== 'string' ||
      typeof data.l !== 'number'
    ) {
      log(`skipped job ${describe(key)} of ${job.queue}: not a troupe job`);
      served.skipped++;
      return 'ended';
    }
    const coordinator = data.c;
    // Known before the claim: a cancel that follows its `go` in the same read finds it.
    const state: Running = {
      key,
      coordinator,
      controller: new AbortController(),
      calls: new Set(),
    };
    running.set(key, state);
    // Ahead: past the threads of the pool that would run it, it would wait for one.
    const answer = await claim(key, coordinator, of.held > of.threads);
    if (answer === 'back') {
      // Another worker has a thread free for it: no more jobs ahead here until one ends.
      running.delete(key);
      recalled.delete(key);
      of.ahead = false;
      served.back++;
      return 'back';
    }
    const go = answer === 'go';
    if (!go || state.controller.signal.aborted) {
      running.delete(key);
      recalled.delete(key);
      served.skipped++;
      // Cancelled between its go and now: never started; the coordinator lets its entry go.
      if (go) await send(coordinator, cancelledEnd(key)).catch(() => {});
      return 'ended';
    }
    if ((await startWhenFree(of, state)) === 'back') {
      running.delete(key);
      recalled.delete(key);
      if (state.controller.signal.aborted) {
        served.skipped++;
        await send(coordinator, cancelledEnd(key)).catch(() => {});
        return 'ended';
      }
      // Said before the job is back in its queue, so before any other worker can claim it. If
      // it cannot be said, the job stays and runs here: given back unsaid, its next claim would
      // count as a stall of this worker's.
      const told = await send(coordinator, { t: 'back', k: key, w: id }).then(
        () => true,
        () => false,
      );
      if (told) {
        served.back++;
        return 'back';
      }
      running.set(key, state);
      if ((await startWhenFree(of, state, true)) === 'back') {
        // Only a cancel gets a kept job out of the gate.
        running.delete(key);
        served.skipped++;
        await send(coordinator, cancelledEnd(key)).catch(() => {});
        return 'ended';
      }
    }
    let end: Extract<ToCoordinator, { t: 'end' }>;
    let kind: JobPayload['kind'] = 'run';
    try {
      const payload = decode(Buffer.from(data.p, 'base64')) as JobPayload;
      kind = payload.kind;
      end = await run(expert, payload, state, data.l);
    } catch (error) {
      end = {
        t: 'end',
        k: key,
        w: id,
        ok: false,
        e: serializeError(wrapThrown(error, 'E_INTERNAL', `${expert}: the job could not be read`)),
        runMs: 0,
        thread: -1,
      };
    } finally {
      running.delete(key);
      recalled.delete(key);
      // Its ctx calls still waiting will not be read: they end now (and with them the asks
      // this worker counts).
      for (const callId of state.calls) {
        calls.get(callId)?.reject(new TroupeError('E_CANCELLED', 'the task has ended'));
        calls.delete(callId);
      }
      of.started--;
      of.ahead = true;
      startNext(of);
    }
    if (kind === 'probe') served.probes++;
    else if (kind === 'message') served.messages++;
    else if (end.ok) served.done++;
    else served.failed++;
    await send(coordinator, end).catch(() => {});
    return 'ended';
  };

  const cancelledEnd = (key: string): Extract<ToCoordinator, { t: 'end' }> => ({
    t: 'end',
    k: key,
    w: id,
    ok: false,
    e: serializeError(new TroupeError('E_CANCELLED', 'cancelled before it started')),
    runMs: 0,
    thread: -1,
  });

  const run = (
    expert: string,
    payload: JobPayload,
    state: Running,
    limit: number,
  ): Promise<Extract<ToCoordinator, { t: 'end' }>> => {
    const pool = pools.get(expert) as Pool;
    const signal = state.controller.signal;
    const base = { t: 'end' as const, k: state.key, w: id };
    type End = Extract<ToCoordinator, { t: 'end' }>;
    const failed = (error: unknown, runMs: number, thread: number): End => ({
      ...base,
      ok: false,
      e: serializeError(wrapThrown(error, 'E_INTERNAL', expert)),
      runMs,
      thread,
    });
    const done = (value: unknown, runMs: number, thread: number): End => {
      const size = encode(value, `${expert}'s output`).length;
      if (size > limit) return failed(tooLarge(`${expert}'s output`, size, limit), runMs, thread);
      return { ...base, ok: true, v: value, runMs, thread };
    };
    if (payload.kind === 'probe') {
      return pool
        .probe(expert, {
          signal,
          ...(payload.requires === undefined ? {} : { requires: payload.requires }),
        })
        .then(
          (value) => done(value, 0, -1),
          (error: unknown) => failed(error, 0, -1),
        );
    }
    return new Promise((resolve) => {
      const settled = (
        error: TroupeError | undefined,
        value: unknown,
        runMs: number,
        _origin: unknown,
        thread: number,
      ) => {
        try {
          resolve(error === undefined ? done(value, runMs, thread) : failed(error, runMs, thread));
        } catch (thrown) {
          resolve(failed(thrown, runMs, thread));
        }
      };
      // The job's key goes with its task: the same for a job run again after a stall, so that
      // a handler with effects outside can de-duplicate (at-least-once).
      const context =
        payload.context?.task === undefined
          ? payload.context
          : { ...payload.context, task: { ...payload.context.task, key: state.key } };
      const runOptions = { signal, timeoutMs: payload.timeoutMs, context, origin: state };
      if (payload.kind === 'message') {
        const { msg, from } = payload.input as { msg: unknown; from: string };
        pool.message(expert, msg, from, runOptions).then(
          (value) => settled(undefined, value, 0, state, -1),
          (error: unknown) =>
            settled(wrapThrown(error, 'E_INTERNAL', expert), undefined, 0, state, -1),
        );
      } else pool.runThen(expert, payload.input, runOptions, settled);
    });
  };

  // One line per outage, not one per reconnect try (every Worker reports each of them).
  let lastError = 0;
  const quietly = (line: string): void => {
    const now = Date.now();
    if (now - lastError < 10_000) return;
    lastError = now;
    log(`${line} (retrying; said once per 10 s)`);
  };
  // Jobs of the experts served, taken only when their pool has room for them (intake.ts).
  const intake: Intake = startIntake({
    bullmq,
    connection: bull,
    prefix: options.prefix,
    queues: options.experts.map((e) => keys.queue(e.name)),
    id,
    lockDurationMs: options.lockDurationMs,
    stalledIntervalMs: options.stalledIntervalMs,
    room: (queue) => !closing && room(slotsOfQueue(queue)),
    handle,
    onError: (error: unknown) => quietly(`redis: ${scrub(messageOf(error), connection)}`),
  });

  const entry = (): string => {
    const value: WorkerEntry = {
      id,
      threads: options.threads,
      experts: options.experts.map((e) => e.name),
      pid: process.pid,
      host: hostname(),
      until: Date.now() + ENTRY_TTL_MS,
    };
    return JSON.stringify(value);
  };
  const beat = (): void => {
    cmd.hset(keys.workers, id, entry()).catch(() => {});
  };
  beat();
  const heartbeat = setInterval(beat, HEARTBEAT_MS);
  // What it serves, every 10 s while it serves anything.
  let said = '';
  const report = setInterval(() => {
    const line = summary(served);
    if (line !== said) log(`troupe worker ${id}: ${line} (${running.size} under way)`);
    said = line;
  }, 10_000);
  report.unref();
  // Jobs whose coordinator has stopped beating are aborted: their results would go unread, and
  // their ctx calls unanswered.
  const watch = setInterval(async () => {
    const coordinators = new Set([...running.values()].map((r) => r.coordinator));
    for (const coordinator of coordinators) {
      if (await alive(coordinator)) continue;
      for (const job of running.values())
        if (job.coordinator === coordinator && !claims.has(job.key)) job.controller.abort();
    }
  }, options.claimTimeoutMs);
  watch.unref();

  log(
    `troupe worker ${id}: serving ${options.experts.map((e) => e.name).join(', ')} from ${connection.safe} (prefix ${options.prefix}), ${options.threads} threads, up to ${options.concurrency} jobs at once`,
  );

  return {
    id,
    served,
    async close(timeoutMs) {
      if (closing) return { drained: true };
      closing = true;
      clearInterval(heartbeat);
      clearInterval(report);
      clearInterval(watch);
      await cmd.hdel(keys.workers, id).catch(() => {});
      // Stop taking jobs; those under way finish within the time given. Those left are left
      // locked: BullMQ's stalled check gives them to another worker once the lock lapses.
      giveBack();
      const drained = await intake.close(timeoutMs);
      await Promise.all(
        [...new Set(pools.values())].map((pool) =>
          pool.close({ force: !drained, timeoutMs: 1_000 }),
        ),
      );
      reader.disconnect();
      await withTimeout(readLoop, 1_000).catch(() => {});
      for (const connection of [cmd, bull]) {
        if (connection.status === 'ready') {
          if (connection === cmd) await withTimeout(cmd.del(inbox), 1_000).catch(() => {});
          await withTimeout(connection.quit(), 1_000).catch(() => {});
        }
        connection.disconnect();
      }
      return { drained };
    },
  };
}

/** What a worker served, in one line (its periodic report and its last words). */
export function summary(served: RedisWorker['served']): string {
  const { done, failed, skipped, probes, messages, back } = served;
  const given = back > 0 ? `, ${back} given back` : '';
  return `served ${done} done, ${failed} failed, ${skipped} skipped${given}; ${probes} probes, ${messages} messages`;
}
