/**
 * A worker's intake: it takes jobs from the BullMQ queues of the experts the worker serves, and
 * takes one only when the worker has room for it (`room`, asked before every fetch and again
 * when a job arrives). BullMQ's own `concurrency` counts per queue, so a worker serving several
 * experts would hold a job of each at once, with no thread for some of them and out of reach of
 * the idle workers; the coordinator's ask deadlock check, which counts threads, cannot see such a
 * job. So the intake uses BullMQ's manual fetching
 * (https://docs.bullmq.io/patterns/manually-fetching-jobs): it renews the locks of the jobs it
 * holds, runs each queue's stalled check, and puts back at the front of its queue a job that
 * arrived when there was no room or that the worker gives back.
 *
 * Fetching: a queue that had a job is asked again without blocking whenever there is room; one
 * found empty waits for a job on its own blocking connection (BullMQ's marker), so that an idle
 * worker starts a new job within one Redis hop without polling.
 */
import type { loadPeers } from './wire.js';

/** What the intake uses of a BullMQ Worker made without a processor (manual fetching). */
interface BullWorker {
  getNextJob(token: string, options: { block: boolean }): Promise<unknown>;
  extendJobLocks(ids: string[], tokens: string[], duration: number): Promise<unknown>;
  startStalledCheckTimer(): Promise<void>;
  close(force: boolean): Promise<void>;
  on(event: 'error', listener: (error: unknown) => void): unknown;
}
type RedisClient = InstanceType<ReturnType<typeof loadPeers>['Redis']>;

/** A job as the intake hands it over: BullMQ's, with the token that holds its lock. */
export interface TakenJob {
  readonly id: string | undefined;
  readonly data: unknown;
  /** The queue it came from. */
  readonly queue: string;
}

/** What became of a job handed over: ended (it leaves its queue), or given back (not run). */
export type Handled = 'ended' | 'back';

export interface IntakeOptions {
  bullmq: ReturnType<typeof loadPeers>['bullmq'];
  connection: RedisClient;
  prefix: string;
  /** The queues to take from, in the order they are tried first. */
  queues: readonly string[];
  /** Token prefix: the worker's id, so that a lock names its holder. */
  id: string;
  lockDurationMs: number;
  stalledIntervalMs: number;
  /** Whether a job of this queue may be taken now. */
  room: (queue: string) => boolean;
  /** Runs a job taken; called only when `room` said yes, synchronously after it. */
  handle: (job: TakenJob) => Promise<Handled>;
  onError: (error: unknown) => void;
}

export interface Intake {
  /** There may be room again: take what fits. */
  pump(): void;
  /** Jobs taken and not yet ended or given back. */
  readonly held: number;
  /** Stops taking jobs; waits up to `timeoutMs` for those held. Resolves whether they all ended. */
  close(timeoutMs: number): Promise<boolean>;
}

interface Lane {
  queue: string;
  worker: BullWorker;
  /** `ready`: may have jobs, asked without blocking; `waiting`: a blocking fetch is under way. */
  state: 'ready' | 'waiting';
}

/** What the intake uses of a BullMQ job it took. */
interface BullJob {
  readonly id?: string;
  readonly data: unknown;
  readonly token?: string;
  moveToWait(token: string): Promise<unknown>;
  moveToCompleted(value: unknown, token: string, fetchNext: boolean): Promise<unknown>;
}

/** A job held: the lane whose lock renewals it needs, and its id (the map's key is its token). */
interface Held {
  lane: Lane;
  id: string;
}

/** How long a lane waits before fetching again after Redis failed it, ms. */
const RETRY_MS = 1_000;

export function startIntake(options: IntakeOptions): Intake {
  const { bullmq, room, onError } = options;
  // By lock token: a job this worker took again after losing its lock is held twice, apart.
  const held = new Map<string, Held>();
  let tokens = 0;
  let closing = false;
  let cursor = 0;
  let pumping = false;
  let again = false;
  let emptied: (() => void) | undefined;

  const lanes: Lane[] = options.queues.map((queue) => {
    const worker = new bullmq.Worker(queue, null, {
      connection: options.connection as never,
      prefix: options.prefix,
      lockDuration: options.lockDurationMs,
      stalledInterval: options.stalledIntervalMs,
      // troupe counts stalls itself (the coordinator's maxStalls): BullMQ never fails a job for one.
      maxStalledCount: Number.MAX_SAFE_INTEGER,
      skipVersionCheck: true,
      autorun: false,
    }) as unknown as BullWorker;
    worker.on('error', onError);
    worker.startStalledCheckTimer().catch(onError);
    return { queue, worker, state: 'ready' };
  });

  // Locks of the jobs held are renewed at half their duration, as BullMQ's own workers do.
  const renew = setInterval(() => {
    for (const lane of lanes) {
      const ids: string[] = [];
      const owned: string[] = [];
      for (const [token, entry] of held)
        if (entry.lane === lane) {
          ids.push(entry.id);
          owned.push(token);
        }
      if (ids.length > 0)
        lane.worker.extendJobLocks(ids, owned, options.lockDurationMs).catch(onError);
    }
  }, options.lockDurationMs / 2);
  renew.unref();

  const give = (lane: Lane, job: unknown): void => {
    const taken = job as BullJob;
    const token = taken.token as string;
    if (closing || taken.id === undefined || !room(lane.queue)) {
      // No room (or closing): back to the front of its queue, for this worker or another.
      taken.moveToWait(token).catch(onError);
      return;
    }
    const id = taken.id;
    held.set(token, { lane, id });
    let handled: Promise<Handled>;
    try {
      handled = options.handle({ id, data: taken.data, queue: lane.queue });
    } catch (error) {
      handled = Promise.reject(error);
    }
    handled
      .then(
        (how) =>
          how === 'back' ? taken.moveToWait(token) : taken.moveToCompleted(null, token, false),
        (error: unknown) => {
          onError(error);
          return taken.moveToCompleted(null, token, false);
        },
      )
      // A lock lost, Redis away: the stalled check puts the job back, and its claim is answered
      // skip once it has ended.
      .catch(onError)
      .finally(() => {
        held.delete(token);
        if (held.size === 0) emptied?.();
        pump();
      });
  };

  const fetch = (lane: Lane, block: boolean): Promise<unknown> =>
    lane.worker.getNextJob(`${options.id}:${++tokens}`, { block });

  const wait = async (lane: Lane): Promise<void> => {
    lane.state = 'waiting';
    while (!closing) {
      let job: unknown;
      try {
        job = await fetch(lane, true);
      } catch (error) {
        if (closing) break;
        onError(error);
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
        continue;
      }
      if (job !== undefined) {
        lane.state = 'ready';
        give(lane, job);
        pump();
        return;
      }
      // Nothing came within BullMQ's block time: wait on only while there is room for a job.
      if (!room(lane.queue)) break;
    }
    lane.state = 'ready';
  };

  const pump = (): void => {
    if (pumping) {
      again = true;
      return;
    }
    pumping = true;
    void (async () => {
      try {
        do {
          again = false;
          // Round robin over the lanes that may have jobs, while any has room.
          for (let tried = 0; tried < lanes.length && !closing; ) {
            const lane = lanes[cursor % lanes.length] as Lane;
            cursor++;
            if (lane.state !== 'ready' || !room(lane.queue)) {
              tried++;
              continue;
            }
            let job: unknown;
            try {
              job = await fetch(lane, false);
            } catch (error) {
              onError(error);
              job = undefined;
            }
            if (job === undefined) {
              void wait(lane);
              tried++;
              continue;
            }
            give(lane, job);
            tried = 0;
          }
        } while (again && !closing);
      } finally {
        pumping = false;
      }
    })();
  };

  pump();

  return {
    pump,
    get held() {
      return held.size;
    },
    async close(timeoutMs) {
      closing = true;
      let timer: NodeJS.Timeout | undefined;
      const drained =
        held.size === 0 ||
        (await new Promise<boolean>((resolve) => {
          emptied = () => resolve(true);
          timer = setTimeout(() => resolve(false), timeoutMs);
        }));
      clearTimeout(timer);
      // Jobs still held are left locked: once their locks lapse, the stalled check of another
      // worker puts them back in their queues.
      clearInterval(renew);
      await Promise.all(lanes.map((lane) => lane.worker.close(true).catch(onError)));
      return drained;
    },
  };
}
