/**
 * One expert: `probing → ready ↔ busy`, `backingOff → probing` after a restart, `retired`.
 * Its work reaches the pool through its link (src/actors/link.ts), which one long-lived callback
 * actor keeps open for the machine's life: no actor and no event per task. Faults of the expert itself
 * (crash, OOM, timeout, load, probe) count against an intensity window; past it the expert
 * restarts: no new work, backoff, a new probe.
 */
import { type EventObject, fromCallback, fromPromise, setup } from 'xstate';
import { backoffMs } from '../actors/supervision.js';
import type { ExpertRecord } from '../actors/types.js';
import type { Core } from '../core.js';
import { isTroupeError, messageOf } from '../errors.js';

export type ExpertEvent =
  /** Its slots or health changed: re-evaluate ready ↔ busy and restarts. */
  { type: 'changed' } | { type: 'revive' };

export interface LinkInput {
  core: Core;
  name: string;
}

/**
 * The pool-facing actor: it opens the expert's link (src/actors/link.ts) for the machine's whole
 * life. The data path goes around the expert's machine: the dispatcher hands work to the link,
 * which frees the slots, counts faults on the record and brings results home itself; the
 * machine hears only when its state may change (a full expert got room, or a fault took it past
 * its intensity).
 */
const link = fromCallback<EventObject, LinkInput>(({ input, sendBack }) =>
  input.core.expert(input.name).link.open(() => sendBack({ type: 'changed' })),
);

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
      input.core.executorOf(input.name).probe(
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
      // The coordinator hears at once, before the router delivers the expert's mail: an expert
      // that comes up takes its waiting subtasks first, then its messages (sendParent would
      // defer it to the end of this step, and turn that order round).
      if (
        before !== record.slot.accepting ||
        wasRetired !== record.slot.retired ||
        state === 'probing'
      )
        self._parent?.send({ type: 'expert.status', name: context.name });
      context.core.router.onState(context.name, state);
    },
    probeOk: ({ context }) => {
      context.record.probeFailures = 0;
      context.record.probe = { ok: true };
      context.core.probeEnded();
    },
    probeFailed: ({ context }, failed: { error: unknown }) => {
      const { record, core } = context;
      const { error } = failed;
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
          {
            actions: { type: 'probeFailed', params: ({ event }) => ({ error: event.error }) },
            guard: 'probeExhausted',
            target: 'retired',
          },
          {
            actions: { type: 'probeFailed', params: ({ event }) => ({ error: event.error }) },
            target: 'backingOff',
          },
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
