/**
 * Expert identification: whether every skill a run needs has an expert that can serve it. The
 * run asks when it enters `identifying`; while a qualified expert still probes, it waits on
 * the coordinator, which asks again whenever an expert's state changes.
 */

import type { ExpertRecord } from '../actors/types.js';
import { TroupeError } from '../errors.js';
import type { RunEvent } from '../types.js';
import type { Run } from './run.js';
import type { Scheduler } from './scheduler.js';

/** What identification reads of the runtime: the experts, who qualifies, and the run's events. */
export interface IdentifyHost {
  readonly scheduler: Pick<Scheduler, 'qualified'>;
  readonly experts: ReadonlyMap<string, ExpertRecord>;
  expert(name: string): ExpertRecord;
  retiredError(needs: string, complexity: number): TroupeError;
  emit(runId: string, event: RunEvent): void;
}

/** Why a run cannot be served, or undefined when every skill it needs has a usable expert. */
export function identify(core: IdentifyHost, run: Run): { wait: boolean; error?: TroupeError } {
  const ledger = run.ledger;
  if (ledger === undefined) return { wait: false };
  let wait = false;
  for (const need of ledger.graph.kinds) {
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
      return { wait: false, error: core.retiredError(need.needs, need.complexity) };
    }
    if (usable.some((e) => core.expert(e.name).state === 'probing')) wait = true;
  }
  return { wait };
}

/** Tells a run's listeners which experts are left out of it (retired), once it is identified. */
export function announceExcluded(core: IdentifyHost, runId: string): void {
  for (const record of core.experts.values()) {
    if (record.state === 'retired')
      core.emit(runId, {
        type: 'expert.excluded',
        runId,
        expert: record.def.name,
        reason: record.reason ?? 'retired',
      });
  }
}
