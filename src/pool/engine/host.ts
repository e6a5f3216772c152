/**
 * The context host's side of the context channel, and the threads' side messages: a thread
 * posts its end of a channel when it starts, over which its tasks' `ctx` calls come, answered by
 * the pool's `host` with the task's `origin`; a thread that cannot post an answer says so.
 */
import { MessagePort } from 'node:worker_threads';
import { expose } from 'comlink/dist/esm/comlink.mjs';
import { serializeError, TroupeError } from '../../errors.js';
import type { Lanes } from '../lanes.js';
import type { ResolvedPoolOptions } from '../options.js';
import type { CallResult, ContextHostApi, ContextOp, SideMessage } from '../protocol.js';
import type { Dispatch } from './handoff.js';
import type { InFlight } from './in-flight.js';
import type { Settlement } from './settle.js';
import type { Threads } from './threads.js';
import type { Shared } from './types.js';

export class Host {
  readonly #options: ResolvedPoolOptions;
  readonly #lanes: Lanes;
  readonly #inFlight: InFlight;
  readonly #threads: Threads;
  readonly #settle: Pick<Settlement, 'onUnsendable' | 'reportStray'>;
  readonly #dispatch: Pick<Dispatch, 'afterSettle'>;

  constructor(
    shared: Shared,
    settle: Pick<Settlement, 'onUnsendable' | 'reportStray'>,
    dispatch: Pick<Dispatch, 'afterSettle'>,
  ) {
    this.#options = shared.options;
    this.#lanes = shared.lanes;
    this.#inFlight = shared.inFlight;
    this.#threads = shared.threads;
    this.#settle = settle;
    this.#dispatch = dispatch;
  }

  /** A message a thread posted outside any task (Piscina's `message` event). */
  onSideMessage(message: unknown): void {
    const side = message as SideMessage | null;
    if (side === null || typeof side !== 'object') return;
    if (side.kind === 'troupe:ctx') {
      // Posted by troupe's dispatcher when a thread starts, before any module loads. Anything
      // else that looks like it (a module posting on parentPort) is ignored.
      if (
        Number.isInteger(side.threadId) &&
        side.port instanceof MessagePort &&
        this.#threads.get(side.threadId)?.port === undefined
      ) {
        try {
          this.#openChannel(side.threadId, side.port);
        } catch (error) {
          this.#settle.reportStray(
            error,
            `thread ${side.threadId}'s context channel could not open`,
          );
        }
      }
      return;
    }
    if (side.kind !== 'troupe:not-cloneable') return;
    if (this.#settle.onUnsendable(side)) this.#dispatch.afterSettle();
  }

  /** A thread started: serve its `ctx` calls on the port it sent (one channel per thread). */
  #openChannel(threadId: number, port: MessagePort): void {
    const api: ContextHostApi = {
      call: (l, g, item, op, args) => this.#serveContext(l, g, item, op, args),
    };
    expose(api, port as never);
    // An idle pool must not keep the process alive.
    port.unref();
    const thread = this.#threads.of(threadId);
    thread.port = port;
    port.once('close', () => {
      if (thread.port === port) thread.port = undefined;
    });
  }

  async #serveContext(
    lane: number,
    gen: number,
    item: number,
    op: ContextOp,
    args: unknown[],
  ): Promise<CallResult> {
    const handoff = this.#inFlight.atLane(lane);
    const job = handoff?.gen === gen ? handoff.jobs[item] : undefined;
    try {
      if (job === undefined || job.settled || handoff?.kill !== undefined) {
        throw new TroupeError(
          'E_CANCELLED',
          `ctx.${op}: the task has already ended (cancelled or timed out)`,
        );
      }
      const host = this.#options.host;
      if (host === undefined) {
        throw new TroupeError(
          'E_NO_RECIPIENT',
          `ctx.${op}: this pool has no context host (messages, progress and the blackboard come with a troupe)`,
        );
      }
      const reading = this.#lanes.read(lane, gen);
      const thread = reading.state === 'handed' ? -1 : reading.threadId;
      return { ok: true, v: await host.call(job.origin, job.module.reg.name, op, args, thread) };
    } catch (error) {
      return { ok: false, e: serializeError(error) };
    }
  }
}
