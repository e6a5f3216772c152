/**
 * The main thread's side of a handler's `ctx` on a worker thread: each call the pool hands over
 * (send, ask, progress, share, lookup) is checked and taken to its owner — messages to the
 * router, progress and the blackboard to the subtask's run.
 */

import type { WorkOrder } from '../actors/types.js';
import { describe, invalidOption, TroupeError } from '../errors.js';
import type { ContextHost } from '../pool/options.js';
import type { ContextOp } from '../pool/protocol.js';
import type { Run } from '../runs/run.js';
import { frame, type Router } from './router.js';
import type { Frame } from './types.js';

export class ThreadCalls implements ContextHost {
  readonly #router: Router;
  readonly #runs: ReadonlyMap<string, Run>;

  constructor(router: Router, runs: ReadonlyMap<string, Run>) {
    this.#router = router;
    this.#runs = runs;
  }

  /** One `ctx` call of a task or a heavy handler on a thread. */
  call(origin: unknown, module: string, op: ContextOp, args: unknown[], thread: number): unknown {
    const from = frameOf(origin, module);
    from.thread = thread;
    switch (op) {
      case 'send':
        this.#router.tell(from, args[0], args[1], 'ctx.send(to)');
        return undefined;
      case 'ask':
        return this.#router.ask(from, args[0], args[1], args[2], 'ctx.ask');
      case 'progress':
        this.#progress(from, args[0], args[1]);
        return undefined;
      case 'share':
        this.#share(from, args[0], args[1]);
        return undefined;
      case 'lookup':
        return this.#board(from, 'lookup').lookup(String(args[0]));
      default:
        throw new TroupeError('E_INTERNAL', `ctx: unknown operation ${describe(op)}`);
    }
  }

  #progress(from: Frame, fraction: unknown, note: unknown): void {
    if (typeof fraction !== 'number' || !(fraction >= 0 && fraction <= 1))
      throw invalidOption('ctx.progress(fraction)', 'a number from 0 to 1', fraction);
    if (note !== undefined && typeof note !== 'string')
      throw invalidOption('ctx.progress(note)', 'a string', note);
    if (from.kind !== 'task' || from.runId === undefined) return;
    this.#runs.get(from.runId)?.progress(from.index, fraction, note);
  }

  #board(from: Frame, op: string): Run {
    const run = from.runId === undefined ? undefined : this.#runs.get(from.runId);
    if (run === undefined || run.finished) {
      throw new TroupeError(
        'E_INVALID_OPTION',
        `ctx.${op}: the blackboard belongs to a run, and this handler runs outside any active run`,
      );
    }
    return run;
  }

  #share(from: Frame, key: unknown, bytes: unknown): void {
    if (typeof key !== 'string' || key.length === 0)
      throw invalidOption('ctx.share(key)', 'a non-empty string', key);
    if (!(bytes instanceof Uint8Array))
      throw new TroupeError('E_INTERNAL', 'ctx.share: the value did not arrive serialized');
    this.#board(from, 'share').share(key, bytes);
  }
}

/**
 * Who is calling: the frame a heavy handler was submitted with, a subtask's attempt (its frame
 * made on its first call), or else a heavy handler of no run.
 */
function frameOf(origin: unknown, module: string): Frame {
  const o = origin as (Partial<Frame> & Partial<WorkOrder>) | undefined;
  if (o !== undefined && o !== null && o.asks instanceof Set) return o as Frame;
  const work = o as WorkOrder | undefined;
  if (work !== undefined && typeof work.runId === 'string' && typeof work.index === 'number') {
    work.frame ??= frame('task', module, work.runId, work.index);
    return work.frame;
  }
  return frame('heavy', module, undefined);
}
