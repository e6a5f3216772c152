/**
 * One expert: `probing → ready ↔ busy`, `backingOff → probing` after a restart, `retired`.
 * Its work reaches the pool through one long-lived callback actor (`link`), never an actor per
 * task. Events carry batches: one `assign` for all the work a dispatch gives the expert, one
 * `settled` for all the results that arrive in the same turn. Faults of the expert itself
 * (crash, OOM, timeout, load, probe) count against an intensity window; past it the expert
 * restarts: no new work, backoff, a new probe.
 */
import { type EventObject, fromCallback, fromPromise, setup } from 'xstate';
import { rejection } from '../actors/experts.js';
import { backoffMs } from '../actors/supervision.js';
import { isTroupeError, messageOf, TroupeError, wrapThrown } from '../errors.js';
import type { Core } from './core.js';
import { settle as settleResults } from './flow.js';
import type { ExpertRecord, WorkOrder, WorkResult } from './types.js';

export type ExpertEvent =
  /** Its slots or health changed: re-evaluate ready ↔ busy and restarts. */
  { type: 'changed' } | { type: 'revive' };

export interface LinkInput {
  core: Core;
  name: string;
}

/**
 * The pool-facing actor: receives work, runs it on the pool, and reports results in batches.
 * The data path goes around the expert's machine: the coordinator hands work through
 * `record.take`; the link frees the slots, counts faults on the shared record and routes
 * results itself (src/machines/flow.ts); the machine hears only when its state may change (a
 * full expert got room, or a fault took it past its intensity).
 */
const link = fromCallback<EventObject, LinkInput>(({ input, sendBack }) => {
  const { core, name } = input;
  const record = core.expert(name);
  const pool = core.poolOf(name);
  let buffer: WorkResult[] = [];
  const flush = () => {
    const results = buffer;
    buffer = [];
    const wasFull = record.slot.active >= record.slot.concurrency;
    record.slot.active -= results.length;
    core.refreshAhead(record);
    for (const result of results) {
      core.router.ended(result.work, result.error);
      if (result.error !== undefined)
        result.error = core.attemptFailed(record, result.work, result.error);
      else core.attemptDone(record, result.work);
    }
    try {
      settleResults(core, results);
    } catch (error) {
      // A bug on the data path: the runs concerned fail (E_INTERNAL), the troupe goes on.
      const message = messageOf(error);
      for (const runId of new Set(results.map((r) => r.work.runId))) {
        const run = core.runs.get(runId);
        if (run === undefined) continue;
        const why = `troupe: results could not be routed: ${message}`;
        core.abandon(run, new TroupeError('E_INTERNAL', why, { cause: error }));
      }
    }
    // Its machine hears only of a change: a restart due, or room where it was full (a full
    // expert that the same pass filled again stays busy, and needs no step of its machine).
    if (record.restartDue || (wasFull && record.slot.active < record.slot.concurrency))
      sendBack({ type: 'changed' });
  };
  const settle = (result: WorkResult) => {
    // Results that arrive in the same turn (a batch from one thread) travel as one event.
    if (buffer.push(result) === 1) queueMicrotask(flush);
  };
  const failed = (work: WorkOrder, error: TroupeError, runMs: number) =>
    settle({ work, expert: name, ok: false, output: undefined, error, runMs });
  // One callback for every subtask of this expert (the pool hands back its run time and its
  // work order): no promise and no closure per subtask on the way back.
  const done = (
    error: TroupeError | undefined,
    output: unknown,
    runMs: number,
    origin: unknown,
  ) => {
    const work = origin as WorkOrder;
    try {
      if (error !== undefined) {
        failed(work, wrapThrown(error, 'E_INTERNAL', name), runMs);
        return;
      }
      // Quality is checked here, on the main thread, before anyone sees the output.
      const reason = rejection(record.def, output, work.input);
      if (reason === undefined)
        settle({ work, expert: name, ok: true, output, error: undefined, runMs });
      else {
        const quality = new TroupeError('E_QUALITY', `${name}: ${reason}`, {
          details: { expert: name },
        });
        failed(work, quality, runMs);
      }
    } catch (thrown) {
      // Nothing may escape to the pool (it would count the result as lost): the attempt fails.
      failed(
        work,
        wrapThrown(thrown, 'E_INTERNAL', `${name}: its result could not be taken`),
        runMs,
      );
    }
  };
  const start = (work: WorkOrder) => {
    const task = { id: work.id, needs: work.needs, attempt: work.attempt, runId: work.runId };
    const context = work.deps === undefined ? { task } : { task, deps: work.deps };
    pool.runThen(
      name,
      work.input,
      { signal: work.signal, timeoutMs: work.timeoutMs, context, origin: work },
      done,
    );
  };
  const take = (work: WorkOrder) => {
    try {
      start(work);
    } catch (error) {
      // A throw here would reach whoever dispatched it: it is this work's failure instead.
      failed(work, wrapThrown(error, 'E_INTERNAL', name), 0);
    }
  };
  record.take = take;
  return () => {
    if (record.take === take) record.take = undefined;
  };
});

/**
 * A probe's failure in words, without what the pool's message starts with (the expert's name,
 * "probe failed:"), so that a reason quoting it does not say them twice.
 */
function probeError(name: string, message: string): string {
  let text = message;
  if (text.startsWith(`${name}: `)) text = text.slice(name.length + 2);
  if (text.startsWith('probe failed: ')) text = text.slice('probe failed: '.length);
  return text;
}

export interface ExpertContext {
  core: Core;
  name: string;
  record: ExpertRecord;
}

export const expertMachine = setup({
  types: {
    context: {} as ExpertContext,
    events: {} as ExpertEvent,
    input: {} as LinkInput,
  },
  actors: {
    link,
    probe: fromPromise<unknown, LinkInput>(({ input }) =>
      input.core.poolOf(input.name).probe(
        input.name,
        // A heavy receiver's module must export onMessage: its probe checks that early.
        input.core.expert(input.name).def.messages === 'heavy' ? { requires: ['onMessage'] } : {},
      ),
    ),
  },
  actions: {
    /** Enters a state: updates what the scheduler sees, and tells the coordinator if that changed. */
    enter: ({ context, self }, state: ExpertRecord['state']) => {
      const { record } = context;
      const before = record.slot.accepting;
      const wasRetired = record.slot.retired;
      record.state = state;
      if (state === 'ready' || state === 'probing') record.reason = undefined;
      if (state === 'probing') record.restartDue = false;
      if (
        before !== record.slot.accepting ||
        wasRetired !== record.slot.retired ||
        state === 'probing'
      ) {
        self._parent?.send({ type: 'expert.status', name: context.name });
      }
      context.core.router.onState(context.name, state);
    },
    probeOk: ({ context }) => {
      context.record.probeFailures = 0;
      context.record.probe = { ok: true };
      context.core.probeEnded();
    },
    probeFailed: ({ context, event }) => {
      const { record, core } = context;
      const error = (event as { error?: unknown }).error;
      const message = messageOf(error);
      const why = probeError(context.name, message);
      record.probeFailures++;
      record.probe = { ok: false, error: why };
      record.reason = `probe failed: ${why}`;
      const code = isTroupeError(error) ? error.code : 'E_PROBE_FAILED';
      record.health.record({ atMs: core.clock.now(), code, message }, core.options.supervision);
      core.probeEnded();
    },
    restart: ({ context }) => {
      const { record, core } = context;
      record.restartDue = false;
      record.restarts++;
      core.restarts++;
      record.health.clearWindow();
      const s = core.options.supervision;
      const last = record.health.faults.at(-1);
      record.reason = `restarted: more than ${s.intensity} faults within ${s.windowMs} ms (last: ${last?.code ?? '?'} ${last?.message ?? ''})`;
      const reason = record.reason;
      core.broadcast((runId) => ({ type: 'expert.restart', runId, expert: context.name, reason }));
    },
    revived: ({ context }) => {
      context.record.probeFailures = 0;
      context.record.health.clearWindow();
    },
    retire: ({ context }) => {
      const { record } = context;
      record.reason = `retired: ${record.probeFailures} probes failed in a row (last: ${record.probe?.error ?? '?'})`;
    },
  },
  guards: {
    full: ({ context }) => context.record.slot.active >= context.record.slot.concurrency,
    hasRoom: ({ context }) => context.record.slot.active < context.record.slot.concurrency,
    restartDue: ({ context }) => context.record.restartDue,
    probeExhausted: ({ context }) =>
      // Guards run before actions: this failure is not counted yet.
      context.record.probeFailures + 1 >= context.core.options.supervision.maxProbeFailures,
  },
  delays: {
    backoff: ({ context }) => {
      const { core, record } = context;
      const s = core.options.supervision;
      const attempt = Math.max(1, record.restarts + record.probeFailures);
      return backoffMs(s.restartBackoffMs, s.maxRestartBackoffMs, attempt, core.random);
    },
  },
}).createMachine({
  id: 'expert',
  context: ({ input }) => ({
    core: input.core,
    name: input.name,
    record: input.core.expert(input.name),
  }),
  invoke: {
    id: 'link',
    src: 'link',
    input: ({ context }) => ({ core: context.core, name: context.name }),
  },
  initial: 'probing',
  // 'changed' has no actions: receiving it re-evaluates the eventless transitions below.
  on: { changed: {} },
  states: {
    probing: {
      entry: { type: 'enter', params: 'probing' },
      invoke: {
        src: 'probe',
        input: ({ context }) => ({ core: context.core, name: context.name }),
        onDone: { actions: 'probeOk', target: 'ready' },
        onError: [
          { actions: 'probeFailed', guard: 'probeExhausted', target: 'retired' },
          { actions: 'probeFailed', target: 'backingOff' },
        ],
      },
    },
    ready: {
      entry: { type: 'enter', params: 'ready' },
      always: [
        { guard: 'restartDue', actions: 'restart', target: 'backingOff' },
        { guard: 'full', target: 'busy' },
      ],
    },
    busy: {
      entry: { type: 'enter', params: 'busy' },
      always: [
        { guard: 'restartDue', actions: 'restart', target: 'backingOff' },
        { guard: 'hasRoom', target: 'ready' },
      ],
    },
    backingOff: {
      entry: { type: 'enter', params: 'backingOff' },
      after: { backoff: 'probing' },
    },
    retired: {
      // Its reason first: entering tells the coordinator and the router, who quote it.
      entry: ['retire', { type: 'enter', params: 'retired' }],
      on: { revive: { target: 'probing', actions: 'revived' } },
    },
  },
});
