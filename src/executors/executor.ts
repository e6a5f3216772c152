/**
 * Where an expert's work runs. The expert links, the router and the expert machine's probe
 * hand work to an executor and hear back through one callback per task; they never see what is
 * behind it. The local pool (src/pool/) is the default executor; `redisExecutor`
 * (src/executors/redis/) hands the same work to `troupe worker` processes through BullMQ.
 */
import type { Settled } from '../pool/jobs.js';
import type { PoolCloseOptions, PoolRunOptions } from '../pool/options.js';

export type { Settled };

/** What the runtime uses of an executor: the local pool's shape, which the pool has itself. */
export interface Executor {
  /** Threads that run its work (what lookahead, efficiency and the ask deadlock check count). */
  readonly threads: number;
  /** Runs `name`'s default export on `input`; `settled` is called once (never synchronously). */
  runThen(name: string, input: unknown, options: PoolRunOptions, settled: Settled): void;
  /** Tasks of `name` worth holding ahead per thread (1 where the executor does not batch). */
  aheadOf(name: string): number;
  /** Delivers a message to `name`'s `onMessage(msg, from, ctx)` export; resolves to its answer. */
  message(name: string, msg: unknown, from: string, options?: PoolRunOptions): Promise<unknown>;
  /** Loads `name`'s module and calls its optional `probe` export. */
  probe(
    name: string,
    options?: Pick<PoolRunOptions, 'signal' | 'timeoutMs'> & { requires?: string[] },
  ): Promise<unknown>;
  /** Lets work finish for up to `timeoutMs`, then cancels the rest; every task has settled when it resolves. */
  close(options?: PoolCloseOptions): Promise<void>;
}
