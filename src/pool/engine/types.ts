/**
 * What the parts of the engine share: the records and queues they all read. Each part takes
 * the fields it uses, and of another part only the methods it calls (a `Pick` of that class).
 */

import type { ModuleState } from '../jobs.js';
import type { Lanes } from '../lanes.js';
import type { PoolMeter } from '../meter.js';
import type { ResolvedPoolOptions } from '../options.js';
import type { WorkQueue } from '../work-queue.js';
import type { InFlight } from './in-flight.js';
import type { KeepAlive } from './keep-alive.js';
import type { Signals } from './signals.js';
import type { Threads } from './threads.js';

export interface Shared {
  readonly options: ResolvedPoolOptions;
  /** The registered modules' states, by name. */
  readonly modules: ReadonlyMap<string, ModuleState>;
  /** Work not yet handed out. */
  readonly queue: WorkQueue;
  readonly lanes: Lanes;
  readonly meter: PoolMeter;
  readonly inFlight: InFlight;
  readonly threads: Threads;
  readonly signals: Signals;
  readonly keepAlive: KeepAlive;
}
