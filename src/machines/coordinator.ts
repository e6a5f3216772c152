/**
 * The coordinator: the root actor, one per troupe. It owns the experts (spawned with
 * `systemId` = their name) and the runs (one child each, stopped as soon as it finishes), hands
 * ready subtasks to experts with free slots when a run or an expert changes, and supervises: it
 * handles every `xstate.error.actor.*` of its children, so that one child's bug never errors the
 * root. Results coming home take the data path (src/runs/dispatch.ts) straight from the
 * expert's link.
 */
import { assign, setup, stopChild } from 'xstate';
import type { Core } from '../core.js';
import { TroupeError } from '../errors.js';
import { announceExcluded, identify } from '../runs/identify.js';
import type { Run } from '../runs/run.js';
import { expertMachine } from './expert.js';
import { runMachine } from './run.js';

export type CoordinatorEvent =
  | { type: 'run.start'; runId: string }
  | { type: 'run.identify'; runId: string }
  /** The run ended (Run.end has given its caller the outcome): its actor can go. */
  | { type: 'run.finished'; runId: string }
  | { type: 'run.cancel'; runId: string; error: TroupeError }
  | { type: 'expert.status'; name: string }
  | { type: 'expert.revive'; name: string };

interface CoordinatorContext {
  core: Core;
  /** Runs waiting in `identifying` for experts still probing. */
  identifying: Set<string>;
}

export const coordinatorMachine = setup({
  types: {
    context: {} as CoordinatorContext,
    events: {} as CoordinatorEvent,
    input: {} as { core: Core },
  },
  actors: { expert: expertMachine, run: runMachine },
  actions: {
    // The run's actor is kept on its Run (not in context): the data path reaches it there.
    spawnRun: assign(({ context, spawn }, runId: string) => {
      const run = context.core.runs.get(runId) as Run;
      run.ref = spawn('run', { id: runId, input: { core: context.core, runId } });
      return {};
    }),
    identify: ({ context }, runId: string) => {
      context.identifying.add(runId);
    },
    answerIdentify: ({ context }) => {
      const { core } = context;
      for (const runId of [...context.identifying]) {
        const run = core.runs.get(runId);
        if (run === undefined || run.finished) {
          context.identifying.delete(runId);
          continue;
        }
        const verdict = identify(core, run);
        if (verdict.wait) continue;
        context.identifying.delete(runId);
        announceExcluded(core, runId);
        run.ref?.send({ type: 'identified', error: verdict.error });
      }
    },
    checkServable: ({ context }) => context.core.dispatcher.checkServable(),
    dispatch: ({ context }) => context.core.dispatcher.dispatch(),
    forget: ({ context }, runId: string) => {
      context.identifying.delete(runId);
    },
    stopRun: stopChild((_, runId: string) => runId),
    cancelRun: ({ context }, cancel: { runId: string; error: TroupeError }) => {
      context.core.runs.get(cancel.runId)?.ref?.send({ type: 'cancel', error: cancel.error });
    },
    revive: ({ context }, name: string) => {
      context.core.expert(name).ref?.send({ type: 'revive' });
    },
    childFailed: ({ context }, failed: { id: string; cause: unknown }) => {
      // A child actor threw (a bug): its run fails with E_INTERNAL; the troupe goes on.
      const { core } = context;
      const { id, cause } = failed;
      const run = core.runs.get(id);
      const error = new TroupeError(
        'E_INTERNAL',
        `troupe: actor "${id}" failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
      if (run !== undefined && !run.finished) {
        core.abandon(run, error);
        return;
      }
      const record = core.experts.get(id);
      if (record !== undefined) {
        record.state = 'retired';
        record.reason = error.message;
        record.probe ??= { ok: false, error: error.message };
        // What waits for it in its mailbox fails now, as when it retires by itself.
        core.router.onState(id, 'retired');
        core.probeEnded();
      }
    },
  },
}).createMachine({
  id: 'coordinator',
  context: ({ input, spawn }) => {
    for (const record of input.core.experts.values()) {
      const name = record.def.name;
      record.ref = spawn('expert', { id: name, systemId: name, input: { core: input.core, name } });
    }
    return { core: input.core, identifying: new Set<string>() };
  },
  on: {
    'run.start': { actions: { type: 'spawnRun', params: ({ event }) => event.runId } },
    'run.identify': {
      actions: [{ type: 'identify', params: ({ event }) => event.runId }, 'answerIdentify'],
    },
    'expert.status': { actions: ['answerIdentify', 'checkServable', 'dispatch'] },
    'run.finished': {
      actions: [
        { type: 'forget', params: ({ event }) => event.runId },
        { type: 'stopRun', params: ({ event }) => event.runId },
        'dispatch',
      ],
    },
    'run.cancel': { actions: { type: 'cancelRun', params: ({ event }) => event } },
    'expert.revive': { actions: { type: 'revive', params: ({ event }) => event.name } },
    // A child's bug: its run fails, or its expert is retired; then whatever waited on it moves on.
    'xstate.error.actor.*': {
      actions: [
        {
          type: 'childFailed',
          // (The wildcard's event is not in the union: XState makes it, with the child's error.)
          params: ({ event }: { event: { type: string; error?: unknown } }) => ({
            id: event.type.slice('xstate.error.actor.'.length),
            cause: event.error,
          }),
        },
        'answerIdentify',
        'checkServable',
        'dispatch',
      ],
    },
  },
});
