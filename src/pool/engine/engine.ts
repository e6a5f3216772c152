/**
 * The engine behind Pool: builds the records the parts share, Piscina and the parts, and wires
 * them. The parts call one another in one direction only (admission → dispatch → settlement;
 * cancellation and the host → dispatch and settlement); what comes back the other way does so
 * through callbacks timers and events hold (the sweep, a signal's abort, Piscina's balancer and
 * events). The engine also watches the threads (started, gone, missing) and closes the pool.
 */
import { Piscina } from 'piscina';
import { TroupeError } from '../../errors.js';
import type { Job, ModuleState } from '../jobs.js';
import { Lanes } from '../lanes.js';
import { PoolMeter } from '../meter.js';
import type { ResolvedPoolOptions } from '../options.js';
import type { TaskMessage, WorkerBoot } from '../protocol.js';
import { Deque } from '../queue.js';
import type { PoolStats } from '../stats.js';
import { WorkQueue } from '../work-queue.js';
import { Admission } from './admission.js';
import { Cancellation } from './cancel.js';
import { Dispatch } from './handoff.js';
import { Host } from './host.js';
import { HANDOFF_DEPTH, InFlight } from './in-flight.js';
import { KeepAlive } from './keep-alive.js';
import {
  type BalancedTask,
  type BalancedWorker,
  type Balancer,
  hearLostAnswers,
} from './piscina.js';
import { Settlement } from './settle.js';
import { Signals } from './signals.js';
import { Threads } from './threads.js';
import type { Shared } from './types.js';

export class Engine {
  readonly options: ResolvedPoolOptions;
  /** The registered modules' states, by name. */
  readonly modules = new Map<string, ModuleState>();
  /** Where tasks come in (Pool calls it directly: it is on the way of every task). */
  readonly admission: Admission;
  readonly #queue: WorkQueue;
  readonly #meter: PoolMeter;
  readonly #inFlight: InFlight;
  readonly #threads: Threads;
  readonly #keepAlive: KeepAlive;
  readonly #piscina: Piscina;
  readonly #settle: Settlement;
  readonly #dispatch: Dispatch;
  readonly #cancel: Cancellation;
  readonly #watchdog: NodeJS.Timeout;
  #closing: Promise<void> | undefined;
  #pinging = false;

  /** `workerUrl`: the file each thread starts with. */
  constructor(options: ResolvedPoolOptions, workerUrl: string) {
    this.options = options;
    const { threads } = options;
    for (const reg of options.modules.values()) {
      this.modules.set(reg.name, {
        reg,
        queue: new Deque<Job>(),
        queued: 0,
        broken: undefined,
        avgRunMs: 0,
        avgLogMs: 0,
        meanRunMs: 0,
        samples: 0,
        completed: 0,
        failed: 0,
      });
    }
    this.#queue = new WorkQueue(this.modules.values());
    const lanes = new Lanes(threads * HANDOFF_DEPTH);
    this.#inFlight = new InFlight(threads, options.sweepIntervalMs, () => this.#cancel.sweep());
    this.#meter = new PoolMeter();
    this.#threads = new Threads(() => this.#piscina.threads);
    // The watchdog also sweeps, slowly, for what needs no fast timer (a module load that blocks).
    this.#watchdog = setInterval(() => {
      this.#checkThreads();
      this.#cancel.sweep();
    }, options.watchdogIntervalMs);
    this.#watchdog.unref();
    this.#keepAlive = new KeepAlive(this.#watchdog);
    const shared: Shared = {
      options,
      modules: this.modules,
      queue: this.#queue,
      lanes,
      meter: this.#meter,
      inFlight: this.#inFlight,
      threads: this.#threads,
      signals: new Signals((jobs) => this.#cancel.abort(jobs)),
      keepAlive: this.#keepAlive,
    };
    const boot: WorkerBoot = {
      modules: Object.fromEntries([...options.modules].map(([name, m]) => [name, m.href])),
      laneState: lanes.stateBuffer,
      laneTime: lanes.timeBuffer,
      laneSkip: lanes.skipBuffer,
      epoch: this.#meter.epoch,
      moduleLoadTimeoutMs: options.moduleLoadTimeoutMs,
      // Infinity does not cross as an Int: 0 says "no limit".
      maxOutputBytes: Number.isFinite(options.maxOutputBytes) ? options.maxOutputBytes : 0,
      context: options.context,
      idleSpinMs: options.idleSpinMs,
      doomed: this.#threads.doomed.buffer as SharedArrayBuffer,
    };
    this.#piscina = new Piscina({
      filename: workerUrl,
      // Never undefined: Piscina would then start no thread at all.
      minThreads: threads,
      maxThreads: threads,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Two messages per thread: the next one waits in the thread's own port while the first
      // runs (the dispatcher still runs them one at a time), so the thread never sleeps between
      // tasks waiting for the main thread to hand it more.
      concurrentTasksPerWorker: HANDOFF_DEPTH,
      loadBalancer: ((task: BalancedTask, workers: BalancedWorker[]) =>
        this.#dispatch.balance(task, workers)) as unknown as Balancer,
      recordTiming: false,
      workerData: boot,
      ...(options.resourceLimits === undefined ? {} : { resourceLimits: options.resourceLimits }),
    });
    this.#settle = new Settlement(shared);
    this.#dispatch = new Dispatch(shared, this.#piscina, this.#settle);
    this.#cancel = new Cancellation(shared, this.#settle, this.#dispatch);
    this.admission = new Admission(shared, this.#settle, this.#dispatch);
    const host = new Host(shared, this.#settle, this.#dispatch);
    // Unheard, a pool 'error' kills the process. These are thread errors with no task on them.
    this.#piscina.on('error', (error: unknown) =>
      this.#settle.reportStray(error, 'a thread failed outside any task'),
    );
    this.#piscina.on('message', (message: unknown) => host.onSideMessage(message));
    this.#piscina.on('workerCreate', (worker: { id: number }) => {
      this.#meter.threadStarted(worker.id);
      const threadId = worker.id;
      hearLostAnswers(worker, (error) => {
        if (this.#settle.onLostAnswer(threadId, error)) this.#dispatch.afterSettle();
      });
      this.#threads.of(worker.id).ready = true;
      // A replacement is ready: work stacked behind a busy thread meanwhile may move to it.
      this.#dispatch.scheduleSteal();
    });
    this.#piscina.on('workerDestroy', () => {
      // The gone thread's id already reads -1 here (Node clears it before 'exit'): keep only
      // the ids of threads still listed, or a dead one would count as idle for ever after.
      const live = this.#threads.liveIds();
      this.#threads.prune(live);
      this.#meter.threadGone(live, !this.admission.closed);
    });
  }

  /** Resolves when no task is queued or running (at once if none is). */
  idle(): Promise<void> {
    if (this.#queue.size === 0 && this.#inFlight.size === 0) return Promise.resolve();
    return this.#keepAlive.whenIdle();
  }

  /**
   * Stops taking tasks, lets queued and running ones finish for up to `timeoutMs` (none if
   * `force`), then cancels the rest (`E_CLOSED`) and stops every thread. Once closing, a forced
   * close cancels what is left at once.
   */
  close(force: boolean, timeoutMs: number): Promise<void> {
    if (this.#closing !== undefined) {
      if (force) this.#cancel.cancelAll(new TroupeError('E_CLOSED', 'the pool was destroyed'));
      return this.#closing;
    }
    this.admission.close();
    this.#closing = (async () => {
      if (!force && timeoutMs > 0) await this.#idleWithin(timeoutMs);
      if (this.#queue.size > 0 || this.#inFlight.size > 0) {
        const why = force
          ? 'the pool was closed with force'
          : `the task did not finish within ${timeoutMs} ms of close()`;
        // Every task settles here; destroying Piscina then frees the slots of what was in flight.
        this.#cancel.cancelAll(new TroupeError('E_CLOSED', why));
      }
      clearInterval(this.#watchdog);
      this.#dispatch.stop();
      this.#inFlight.stopSweeper();
      // Piscina terminates every thread and waits for each to exit (see Threads.end).
      for (const id of this.#threads.liveIds()) this.#threads.doom(id);
      await this.#piscina.destroy();
      await this.idle();
    })();
    return this.#closing;
  }

  stats(): PoolStats {
    return this.#meter.snapshot({
      threads: this.options.threads,
      liveThreadIds: this.#threads.liveIds(),
      queued: this.#queue.size,
      running: this.#inFlight.running(this.#settle.settling),
      modules: this.modules.values(),
    });
  }

  /** Work waits and threads are missing (Piscina stopped replacing them): start one. */
  #checkThreads(): void {
    if (this.admission.closed || this.#pinging || this.#queue.size + this.#inFlight.size === 0)
      return;
    if (this.#piscina.threads.length >= this.options.threads) return;
    this.#pinging = true;
    const ping: TaskMessage = { k: 'ping', m: '', l: -1, g: 0, i: [] };
    const done = () => {
      this.#pinging = false;
    };
    this.#piscina.run(ping).then(done, done);
  }

  #idleWithin(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      timer.unref();
      void this.idle().then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
