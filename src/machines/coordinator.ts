/**
 * The coordinator: the root actor, one per troupe. It owns the experts (spawned with
 * `systemId` = their name) and the runs (one child each, stopped as soon as it finishes), hands
 * ready subtasks to experts with free slots, routes results back, and supervises: it handles
 * every `xstate.error.actor.*` of its children, so that one child's bug never errors the root.
 */
import { assign, setup, stopChild } from 'xstate';
import { TroupeError } from '../errors.js';
import type { Outcome } from '../types.js';
import type { Core, RunEntry, WorkOrder, WorkResult } from './core.js';
import { expertMachine } from './expert.js';
import { runMachine } from './run.js';

export type CoordinatorEvent =
  | { type: 'run.start'; runId: string }
  | { type: 'run.identify'; runId: string }
  | { type: 'run.ready'; runId: string; indexes: number[] }
  | { type: 'run.finished'; runId: string; outcome: Outcome }
  | { type: 'run.cancel'; runId: string; error: TroupeError }
  | { type: 'expert.status'; name: string }
  | { type: 'expert.settled'; results: WorkResult[] }
  | { type: 'expert.revive'; name: string };

interface CoordinatorContext {
  core: Core;
  /** Runs waiting in `identifying` for experts still probing. */
  identifying: Set<string>;
}

/** Why a run cannot be served, or undefined when every skill it needs has a usable expert. */
function identify(core: Core, entry: RunEntry): { wait: boolean; error?: TroupeError } {
  const ledger = entry.ledger;
  if (ledger === undefined) return { wait: false };
  const needs = new Map<string, { needs: string; complexity: number }>();
  ledger.graph.subtasks.forEach((s, i) => {
    const complexity = ledger.graph.complexity[i] as number;
    needs.set(`${complexity}\u0000${s.needs}`, { needs: s.needs, complexity });
  });
  let wait = false;
  for (const need of needs.values()) {
    const qualified = core.scheduler.qualified(need.needs, need.complexity);
    if (qualified.length === 0) {
      const onOffer = new Map<string, string[]>();
      for (const record of core.experts.values()) {
        for (const [skill, level] of Object.entries(record.def.skills)) {
          onOffer.set(skill, [...(onOffer.get(skill) ?? []), `${record.def.name} ${level}`]);
        }
      }
      const offer = [...onOffer].map(([skill, who]) => `${skill} (${who.join(', ')})`).join(', ');
      return {
        wait: false,
        error: new TroupeError(
          'E_NO_EXPERT',
          `no expert has the skill "${need.needs}" at level ${need.complexity} or above; on offer: ${offer || 'nothing'}`,
          {
            details: {
              needs: need.needs,
              complexity: need.complexity,
              onOffer: Object.fromEntries(onOffer),
            },
          },
        ),
      };
    }
    const usable = qualified.filter((e) => !e.retired);
    if (usable.length === 0) {
      const reasons = qualified
        .map((e) => `${e.name}: ${core.expert(e.name).reason ?? 'retired'}`)
        .join('; ');
      return {
        wait: false,
        error: new TroupeError(
          'E_EXPERT_RETIRED',
          `every expert with "${need.needs}" at level ${need.complexity} is retired (${reasons})`,
          {
            details: { needs: need.needs, complexity: need.complexity },
          },
        ),
      };
    }
    if (usable.some((e) => core.expert(e.name).state === 'probing')) wait = true;
  }
  return { wait };
}

export const coordinatorMachine = setup({
  types: {
    context: {} as CoordinatorContext,
    events: {} as CoordinatorEvent,
    input: {} as { core: Core },
  },
  actors: { expert: expertMachine, run: runMachine },
  actions: {
    spawnRun: assign(({ context, event, spawn }) => {
      if (event.type !== 'run.start') return {};
      const entry = context.core.runs.get(event.runId) as RunEntry;
      entry.ref = spawn('run', {
        id: event.runId,
        input: { core: context.core, runId: event.runId },
      });
      return {};
    }),
    identify: ({ context, event }) => {
      if (event.type !== 'run.identify') return;
      context.identifying.add(event.runId);
    },
    answerIdentify: ({ context }) => {
      const { core } = context;
      for (const runId of [...context.identifying]) {
        const entry = core.runs.get(runId);
        if (entry === undefined || entry.finished) {
          context.identifying.delete(runId);
          continue;
        }
        const verdict = identify(core, entry);
        if (verdict.wait) continue;
        context.identifying.delete(runId);
        for (const record of core.experts.values()) {
          if (record.state === 'retired')
            core.emit(runId, {
              type: 'expert.excluded',
              runId,
              expert: record.def.name,
              reason: record.reason ?? 'retired',
            });
        }
        entry.ref?.send({ type: 'identified', error: verdict.error });
      }
    },
    enqueue: ({ context, event }) => {
      if (event.type !== 'run.ready') return;
      const entry = context.core.runs.get(event.runId);
      if (entry === undefined || entry.finished || entry.ledger === undefined) return;
      context.core.enqueue(event.runId, entry.ledger, event.indexes);
    },
    checkServable: ({ context }) => {
      const { core } = context;
      for (const runId of core.scheduler.runIds()) {
        const lost = core.scheduler.unservable(runId);
        if (lost.length === 0) continue;
        const entry = core.runs.get(runId);
        const { needs, complexity } = lost[0] as { needs: string; complexity: number };
        const error = new TroupeError(
          'E_EXPERT_RETIRED',
          `every expert that could take subtasks needing "${needs}" at level ${complexity} is retired`,
          { details: { needs, complexity } },
        );
        core.scheduler.removeRun(runId);
        entry?.ref?.send({ type: 'abort', error });
      }
    },
    dispatch: ({ context }) => {
      const { core } = context;
      // One event per expert, however many subtasks this pass gives it.
      const byExpert = new Map<string, WorkOrder[]>();
      for (const a of core.scheduler.dispatch()) {
        const entry = core.runs.get(a.item.runId);
        const ledger = entry?.ledger;
        if (
          entry === undefined ||
          entry.finished ||
          ledger === undefined ||
          ledger.isTerminal(a.item.index)
        ) {
          a.expert.active--;
          continue;
        }
        const i = a.item.index;
        const record = core.expert(a.expert.name);
        ledger.running(i, a.expert.name, a.level, core.clock.now() - entry.startedAt);
        const id = ledger.graph.ids[i] as string;
        const work: WorkOrder = {
          runId: entry.runId,
          index: i,
          id,
          needs: a.item.needs,
          attempt: ledger.attempts[i] as number,
          level: a.level,
          input: (ledger.graph.subtasks[i] as { input?: unknown }).input,
          deps: ledger.depsOf(i),
          timeoutMs:
            (ledger.graph.subtasks[i] as { timeoutMs?: number }).timeoutMs ??
            record.def.timeoutMs ??
            core.options.timeoutMs,
          signal: entry.controller.signal,
        };
        core.running++;
        core.emit(entry.runId, {
          type: 'subtask.start',
          runId: entry.runId,
          id,
          expert: a.expert.name,
          attempt: work.attempt,
        });
        const works = byExpert.get(a.expert.name);
        if (works === undefined) byExpert.set(a.expert.name, [work]);
        else works.push(work);
      }
      for (const [name, works] of byExpert) {
        const record = core.expert(name);
        record.link?.send({ type: 'work', works });
        // Full now: its machine goes busy (it hears nothing else of the data path).
        if (record.slot.active >= record.slot.concurrency && record.state === 'ready')
          record.ref?.send({ type: 'changed' });
      }
    },
    /**
     * Results come home. A success is data, not control flow: the coordinator writes it to the
     * run's ledger and queues the dependents it releases, without waking the run's machine.
     * The run hears of failures (its retry policy) and of its last subtask ending.
     */
    route: ({ context, event }) => {
      if (event.type !== 'expert.settled') return;
      const { core } = context;
      core.running -= event.results.length;
      const wake = new Map<string, WorkResult[]>();
      for (const result of event.results) {
        const { runId, index, id } = result.work;
        const entry = core.runs.get(runId);
        const ledger = entry?.ledger;
        if (
          entry === undefined ||
          entry.finished ||
          ledger === undefined ||
          ledger.isTerminal(index)
        )
          continue;
        if (result.ok && ledger.failed === 0) {
          const ready = ledger.complete(
            index,
            result.output,
            result.runMs,
            core.clock.now() - entry.startedAt,
          );
          core.emit(runId, {
            type: 'subtask.end',
            runId,
            id,
            status: 'done',
            expert: result.expert,
          });
          core.enqueue(runId, ledger, ready);
          if (ledger.finished && !wake.has(runId)) wake.set(runId, []);
          continue;
        }
        const list = wake.get(runId);
        if (list === undefined) wake.set(runId, [result]);
        else list.push(result);
      }
      for (const [runId, results] of wake)
        core.runs.get(runId)?.ref?.send({ type: 'work.settled', results });
    },
    finish: ({ context, event }) => {
      if (event.type !== 'run.finished') return;
      const { core } = context;
      const entry = core.runs.get(event.runId);
      if (entry === undefined) return;
      entry.finished = true;
      core.scheduler.removeRun(event.runId);
      core.runs.delete(event.runId);
      context.identifying.delete(event.runId);
      core.counts[event.outcome.status]++;
      entry.close();
      entry.resolve(event.outcome);
    },
    stopRun: stopChild(({ event }) => (event as { runId: string }).runId),
    cancelRun: ({ context, event }) => {
      if (event.type !== 'run.cancel') return;
      context.core.runs.get(event.runId)?.ref?.send({ type: 'cancel', error: event.error });
    },
    revive: ({ context, event }) => {
      if (event.type !== 'expert.revive') return;
      context.core.expert(event.name).ref?.send({ type: 'revive' });
    },
    childFailed: ({ context, event }) => {
      // A child actor threw (a bug): its run fails with E_INTERNAL; the troupe goes on.
      const { core } = context;
      const id = event.type.slice('xstate.error.actor.'.length);
      const entry = core.runs.get(id);
      const cause = (event as unknown as { error?: unknown }).error;
      const error = new TroupeError(
        'E_INTERNAL',
        `troupe: actor "${id}" failed: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
      if (entry !== undefined && !entry.finished) {
        core.abandon(entry, error);
        return;
      }
      const record = core.experts.get(id);
      if (record !== undefined) {
        record.state = 'retired';
        record.slot.accepting = false;
        record.slot.retired = true;
        record.reason = error.message;
        record.probe ??= { ok: false, error: error.message };
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
    'run.start': { actions: 'spawnRun' },
    'run.identify': { actions: ['identify', 'answerIdentify'] },
    'run.ready': { actions: ['enqueue', 'checkServable', 'dispatch'] },
    'expert.settled': { actions: ['route', 'checkServable', 'dispatch'] },
    'expert.status': { actions: ['answerIdentify', 'checkServable', 'dispatch'] },
    'run.finished': { actions: ['finish', 'stopRun', 'dispatch'] },
    'run.cancel': { actions: 'cancelRun' },
    'expert.revive': { actions: 'revive' },
    // A child's bug: its run fails, or its expert is retired; then whatever waited on it moves on.
    'xstate.error.actor.*': {
      actions: ['childFailed', 'answerIdentify', 'checkServable', 'dispatch'],
    },
  },
});
