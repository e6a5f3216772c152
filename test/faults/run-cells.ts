// The matrix's faults outside a handler: a plan's analyze, integrate or validate that throws, an
// expert whose module is broken or whose probe fails, a message to a dead expert, an ask to an
// expert that crashes — each alone, during another run, and with the queue full.
import { expect } from 'vitest';
import {
  defineExpert,
  type ErrorCode,
  type Outcome,
  type Troupe,
  type TroupeOptions,
} from '../../dist/src/index.js';
import { fixture, settle, until } from '../helpers.js';
import {
  type Check,
  checkAfter,
  expert,
  gate,
  plan,
  refusal,
  Starts,
  subtasks,
  troupeOptions,
} from './matrix.js';

export type RunPlace = 'alone' | 'during another run' | 'queue full';
export const RUN_PLACES: RunPlace[] = ['alone', 'during another run', 'queue full'];

interface Ctx {
  t: Troupe;
  starts: Starts;
  slot0: number;
}

export interface RunFault {
  name: string;
  /** Experts besides the matrix's `x`. */
  experts?: () => TroupeOptions['experts'];
  /**
   * Subtasks the faulty run asks for, or would (with the queue full, exactly what is left of the
   * bound: a run that throws in analyze is admitted, then fails).
   */
  needs: number;
  /** Does the faulty thing; resolves to the outcome of the run it struck, if one. */
  act(c: Ctx): Promise<{ outcome?: Outcome; subtasks: number }>;
  status?: Outcome['status'];
  code?: ErrorCode;
  stage?: string;
}

const COUNT = 3;
const some = (c: Ctx, prefix = 'p') => subtasks(c.starts, COUNT, c.slot0, prefix);
const nullProto = () => Object.create(null) as object;
const hostile = () =>
  new Proxy(
    {},
    {
      get() {
        throw new Error('a trap that throws');
      },
      getPrototypeOf() {
        throw new Error('a trap that throws');
      },
    },
  );

export const RUN_FAULTS: RunFault[] = [
  {
    name: 'analyze throws an Error',
    needs: 1,
    act: async (c) => ({
      outcome: await c.t.run(
        {
          analyze: () => {
            throw new Error('analysis failed');
          },
        },
        null,
      ),
      subtasks: 0,
    }),
    status: 'failed',
    code: 'E_TASK_FAILED',
    stage: 'analyzing',
  },
  {
    needs: 1,
    name: 'analyze throws a null-prototype object',
    act: async (c) => ({
      outcome: await c.t.run(
        {
          analyze: () => {
            throw nullProto();
          },
        },
        null,
      ),
      subtasks: 0,
    }),
    status: 'failed',
    code: 'E_TASK_FAILED',
    stage: 'analyzing',
  },
  {
    needs: 3,
    name: 'integrate throws a proxy whose traps throw',
    act: async (c) => ({
      outcome: await c.t.run(
        {
          analyze: () => some(c),
          integrate: () => {
            throw hostile();
          },
        },
        null,
      ),
      subtasks: COUNT,
    }),
    status: 'failed',
    code: 'E_TASK_FAILED',
    stage: 'integrating',
  },
  {
    needs: 3,
    name: "the plan's validate throws",
    act: async (c) => ({
      outcome: await c.t.run(
        {
          analyze: () => some(c),
          validate: () => {
            throw new Error('not good enough');
          },
        },
        null,
      ),
      subtasks: COUNT,
    }),
    status: 'failed',
    code: 'E_QUALITY',
    stage: 'validating',
  },
  {
    needs: 4,
    name: 'an expert whose module is broken on load',
    experts: () => [
      defineExpert({ name: 'broken', skills: { b: 1 }, module: fixture('broken-on-load') }),
    ],
    act: async (c) => ({
      outcome: await c.t.run({ analyze: () => [...some(c), { id: 'needs-b', needs: 'b' }] }, null),
      subtasks: COUNT + 1,
    }),
    status: 'failed',
    code: 'E_EXPERT_RETIRED',
  },
  {
    needs: 4,
    name: 'an expert whose probe fails',
    experts: () => [
      defineExpert({ name: 'gpu', skills: { b: 1 }, module: fixture('probe-fails') }),
    ],
    act: async (c) => ({
      outcome: await c.t.run({ analyze: () => [...some(c), { id: 'needs-b', needs: 'b' }] }, null),
      subtasks: COUNT + 1,
    }),
    status: 'failed',
    code: 'E_EXPERT_RETIRED',
  },
  {
    needs: 1,
    name: 'a message to a dead expert',
    experts: () => [
      defineExpert({
        name: 'dead',
        skills: { b: 1 },
        module: fixture('probe-fails'),
        onMessage: () => 'never',
      }),
    ],
    act: async (c) => {
      // Once it has retired (a run that needs it says so), tell and ask fail at once.
      const first = await c.t.run({ analyze: () => [{ id: 'needs-b', needs: 'b' }] }, null);
      expect(first.status === 'failed' && first.error.code).toBe('E_EXPERT_RETIRED');
      const told = await settle(Promise.resolve().then(() => c.t.tell('dead', { hi: 1 })));
      expect(told.ok ? 'delivered' : told.code, 'tell to a dead expert').toBe('E_NO_RECIPIENT');
      const asked = await settle(c.t.ask('dead', { hi: 1 }, { timeoutMs: 5_000 }));
      expect(asked.ok ? 'answered' : asked.code, 'ask to a dead expert').toBe('E_NO_RECIPIENT');
      return { subtasks: 0 };
    },
  },
  {
    needs: 0,
    name: 'an ask to an expert that crashes',
    experts: () => [
      defineExpert({
        name: 'heavy',
        skills: { h: 1 },
        module: fixture('talker'),
        messages: 'heavy',
      }),
    ],
    act: async (c) => {
      const asked = await settle(c.t.ask('heavy', { op: 'crash' }, { timeoutMs: 10_000 }));
      expect(asked.ok ? 'answered' : asked.code, 'ask to a crashing expert').toBe(
        'E_WORKER_CRASHED',
      );
      // It is restarted and answers the next one.
      const again = await c.t.ask('heavy', { op: 'echo', value: 5 }, { timeoutMs: 10_000 });
      expect((again as { echo: number }).echo).toBe(5);
      return { subtasks: 0 };
    },
  },
];

/** What the other run takes of the queue's bound. */
const OTHER = 3;

export async function runCell(
  open: (options: TroupeOptions) => Troupe,
  threads: number,
  fault: RunFault,
  place: RunPlace,
): Promise<void> {
  const starts = new Starts(64);
  const t = open(
    troupeOptions(threads, {
      experts: [expert('x', threads, 'auto'), ...(fault.experts?.() ?? [])],
      supervision: { restartBackoffMs: 1, maxRestartBackoffMs: 2, maxProbeFailures: 2 },
      ...(place === 'queue full' ? { maxQueuedSubtasks: OTHER + Math.max(1, fault.needs) } : {}),
    }),
  );
  const check: Check = { troupe: t, starts, outcomes: [], mayRerun: false };
  let other: Promise<Outcome> | undefined;
  const g = gate();
  // Another run under way: short subtasks, or (queue full) one held at a gate that takes what
  // the faulty run leaves of the bound.
  if (place === 'during another run')
    other = t.run(plan(subtasks(starts, 10, 0, 'o', () => ({ input: { spinMs: 3 } }))), null);
  const bound = OTHER + Math.max(1, fault.needs);
  const otherCount = place === 'queue full' ? bound - fault.needs : 10;
  if (place === 'queue full') {
    // Every subtask of the other run held (at a gate, or queued behind one): all outstanding.
    other = t.run(
      plan(subtasks(starts, otherCount, 0, 'o', () => ({ input: { gate: g.sab } }))),
      null,
    );
    await g.opened();
    // What is left of the bound is what the faulty run asks: one subtask more is refused.
    expect(await refusal(t, fault.needs + 1), 'one subtask more than is left').toBe('E_QUEUE_FULL');
  }
  const slot0 = 16;
  // The faulty run is admitted at the bound; the gate opens once it is under way.
  let acted = false;
  const acting = fault.act({ t, starts, slot0 }).finally(() => {
    acted = true;
  });
  // (A run that fails at once, before its subtasks are counted, does not wait for it.)
  if (place === 'queue full') await until(() => acted || t.stats().subtasks.outstanding === bound);
  g.open();
  const { outcome, subtasks: count } = await acting;
  if (outcome !== undefined) {
    expect(outcome.status).toBe(fault.status);
    if (outcome.status !== 'done') expect(outcome.error.code).toBe(fault.code);
    if (fault.stage !== undefined && outcome.status !== 'done')
      expect(outcome.stage).toBe(fault.stage);
    check.outcomes.push({ outcome, slot0, subtasks: count });
  }
  if (other !== undefined) {
    const a = await other;
    expect(a.status, 'the other run').toBe('done');
    check.outcomes.push({ outcome: a, slot0: 0, subtasks: otherCount });
  }
  if (place === 'queue full') {
    // Whatever the fault, the whole bound is free again.
    const again = await t.run(plan(subtasks(new Starts(bound), bound, 0, 'r')), null);
    expect(again.status).toBe('done');
  }
  await checkAfter(check);
}
