// The runtime against a model, and the machines' coverage. A fast-check command sequence
// (start runs with random faults, crash the expert, cancel runs, move a manual clock, revive,
// close gracefully or by force, wait for them) runs against a real troupe and checks what must
// hold after each step: statuses, records, expert states, the counts in stats(). Every troupe
// here is inspected; at the end every state and every transition of the coordinator, run and
// expert machines (read from their definitions, with xstate/graph) must have been taken by some
// step — a new state or transition that nothing reaches fails this file, naming it.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { getStateNodes } from 'xstate/graph';
import {
  defineExpert,
  type Outcome,
  type Troupe,
  type TroupeOptions,
} from '../../dist/src/index.js';
import { coordinatorMachine } from '../../dist/src/machines/coordinator.js';
import { expertMachine } from '../../dist/src/machines/expert.js';
import { runMachine } from '../../dist/src/machines/run.js';
import { fixture, manualClock, until } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

// ---------------------------------------------------------------------------------------------
// Coverage: what the machines define, and what the inspected troupes took.

// biome-ignore lint/suspicious/noExplicitAny: XState's machine types, read generically here
type AnyMachine = any;
const MACHINES: AnyMachine[] = [coordinatorMachine, runMachine, expertMachine];

interface Node {
  id: string;
  transitions: Map<string, { target?: { id: string }[] }[]>;
  always?: { target?: { id: string }[] }[];
}

const key = (source: string, event: string, targets: { id: string }[] | undefined) =>
  `${source} -[${event}]-> ${targets?.map((n) => n.id).join(',') ?? '(self)'}`;

function defined(machine: AnyMachine): { states: string[]; transitions: string[] } {
  const nodes = [machine.root, ...getStateNodes(machine.root)] as Node[];
  const transitions: string[] = [];
  for (const node of nodes) {
    for (const [event, list] of node.transitions)
      for (const t of list) transitions.push(key(node.id, event, t.target));
    for (const t of node.always ?? []) transitions.push(key(node.id, '', t.target));
  }
  return { states: nodes.map((n) => n.id), transitions };
}

const taken = new Set<string>();
const entered = new Set<string>();

/** The ids of the state nodes a state value is in (`run`, `run.analyzing`, …). */
function nodesOf(machine: string, value: unknown): string[] {
  if (typeof value === 'string') return [machine, `${machine}.${value}`];
  if (value === null || typeof value !== 'object') return [machine];
  return [
    machine,
    ...Object.entries(value).flatMap(([key, inner]) => nodesOf(`${machine}.${key}`, inner)),
  ];
}

/** An `inspect` that records each microstep's transitions and the states it enters. */
function inspect(event: unknown): void {
  const e = event as {
    type: string;
    actorRef?: { logic?: { id?: string } };
    _transitions?: { source: { id: string }; target?: { id: string }[]; eventType: string }[];
    snapshot?: { value?: unknown };
  };
  if (e.type === '@xstate.microstep')
    for (const t of e._transitions ?? []) taken.add(key(t.source.id, t.eventType, t.target));
  const machine = e.actorRef?.logic?.id;
  // The snapshot is troupe's summary of it: its state value says which nodes it is in.
  if ((e.type === '@xstate.snapshot' || e.type === '@xstate.microstep') && machine !== undefined)
    for (const id of nodesOf(machine, e.snapshot?.value)) entered.add(id);
}

/**
 * Defensive paths no public input reaches: the coordinator's answer to a child actor that threw
 * (every user callback is wrapped, so only a bug in troupe would get there).
 */
const UNREACHABLE = ['transition coordinator -[xstate.error.actor.*]-> (self)'];

afterAll(() => {
  const missing: string[] = [];
  for (const machine of MACHINES) {
    const { states, transitions } = defined(machine);
    for (const s of states) if (!entered.has(s)) missing.push(`state ${s}`);
    for (const t of transitions) if (!taken.has(t)) missing.push(`transition ${t}`);
  }
  expect(missing, 'states and transitions no test reached').toEqual(UNREACHABLE);
});

// ---------------------------------------------------------------------------------------------
// A troupe for the model: one expert on the zoo's `behave`, a manual clock for backoffs.

function modelTroupe(clock: ReturnType<typeof manualClock>, extra: Partial<TroupeOptions> = {}) {
  return openTroupe({
    threads: 2,
    clock,
    random: () => 0.5,
    retryBackoffMs: 10,
    maxRetryBackoffMs: 20,
    cancelGraceMs: 50,
    supervision: { intensity: 2, windowMs: 1_000, restartBackoffMs: 10, maxRestartBackoffMs: 40 },
    inspect,
    experts: [
      defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave'), concurrency: 4 }),
    ],
    ...extra,
  });
}

type Fault = 'ok' | 'throws' | 'flaky' | 'exits' | 'crashes' | 'spins';

interface RunModel {
  size: number;
  /** A subtask fails on every attempt: the run fails unless cancelled first. */
  fails: boolean;
  cancelled: boolean;
  controller: AbortController;
  outcome: Promise<Outcome>;
  settled: Outcome | undefined;
}

interface Real {
  t: Troupe;
  clock: ReturnType<typeof manualClock>;
  runs: RunModel[];
  closed: boolean;
}

const inputOf = (fault: Fault, i: number) => {
  switch (fault) {
    case 'ok':
      return { op: 'echo', value: i };
    case 'throws':
      return { op: 'throw', message: `fails ${i}` };
    case 'flaky':
      return { op: 'failUntil', okAt: 2 };
    case 'exits':
      return { op: 'exitOnce', sab: new SharedArrayBuffer(4) };
    case 'crashes':
      // Every attempt: the expert's faults (charged, held or isolated); the run fails.
      return { op: 'exit' };
    case 'spins':
      return { op: 'spin', ms: 3 };
  }
};

/** Waits for every run to settle, moving the manual clock on meanwhile (backoffs, restarts). */
async function settleAll(real: Real): Promise<void> {
  await until(() => {
    real.clock.advance(5);
    return real.runs.every((run) => run.settled !== undefined);
  }, 20_000);
}

function checkRun(run: RunModel): void {
  const outcome = run.settled as Outcome;
  expect(outcome.records).toHaveLength(run.size);
  for (const record of outcome.records)
    expect(['done', 'failed', 'cancelled']).toContain(record.status);
  if (!run.cancelled) expect(outcome.status).toBe(run.fails ? 'failed' : 'done');
  if (outcome.status === 'done')
    expect(outcome.records.every((r) => r.status === 'done')).toBe(true);
  if (outcome.status === 'cancelled') expect(run.cancelled).toBe(true);
}

function checkNow(real: Real): void {
  const stats = real.t.stats();
  const open = real.runs.filter((run) => run.settled === undefined).length;
  expect(stats.runs.active).toBe(open);
  if (open === 0) expect(stats.subtasks).toMatchObject({ queued: 0, running: 0, outstanding: 0 });
  for (const expert of real.t.experts())
    expect(['probing', 'ready', 'busy', 'backingOff', 'retired']).toContain(expert.state);
}

class StartRun implements fc.AsyncCommand<object, Real> {
  constructor(readonly faults: Fault[]) {}
  check = () => true;
  async run(_m: object, real: Real): Promise<void> {
    const controller = new AbortController();
    const faults = this.faults;
    if (real.closed) {
      // Closed: refused, nothing admitted.
      await expect(real.t.run({ analyze: () => [] }, null)).rejects.toMatchObject({
        code: 'E_CLOSED',
      });
      return;
    }
    const run: RunModel = {
      size: faults.length,
      fails: faults.includes('throws') || faults.includes('crashes'),
      cancelled: false,
      controller,
      settled: undefined,
      outcome: real.t.run(
        {
          analyze: () =>
            faults.map((fault, i) => ({
              id: `s${i}`,
              needs: 's',
              attempts: 2,
              input: inputOf(fault, i),
            })),
        },
        null,
        { signal: controller.signal },
      ),
    };
    run.outcome.then((outcome) => {
      run.settled = outcome;
    });
    real.runs.push(run);
    checkNow(real);
  }
  toString = () => `start(${this.faults.join(',')})`;
}

class Cancel implements fc.AsyncCommand<object, Real> {
  constructor(readonly which: number) {}
  check = () => true;
  async run(_m: object, real: Real): Promise<void> {
    const run = real.runs[this.which % Math.max(1, real.runs.length)];
    if (run === undefined || run.settled !== undefined) return;
    run.cancelled = true;
    run.controller.abort();
    const outcome = await run.outcome;
    // Cancelled, unless it had ended on its own first.
    expect(['cancelled', 'done', 'failed']).toContain(outcome.status);
    checkRun(run);
  }
  toString = () => `cancel(${this.which})`;
}

class Advance implements fc.AsyncCommand<object, Real> {
  constructor(readonly ms: number) {}
  check = () => true;
  async run(_m: object, real: Real): Promise<void> {
    real.clock.advance(this.ms);
    await new Promise((resolve) => setImmediate(resolve));
    checkNow(real);
  }
  toString = () => `advance(${this.ms})`;
}

class Revive implements fc.AsyncCommand<object, Real> {
  check = () => true;
  async run(_m: object, real: Real): Promise<void> {
    // The expert never retires here (its probe always passes): a revive changes nothing.
    const before = real.t.experts()[0]?.state;
    real.t.revive('w');
    if (before !== 'retired') expect(real.t.experts()[0]?.state).not.toBe('retired');
    checkNow(real);
  }
  toString = () => 'revive';
}

class Close implements fc.AsyncCommand<object, Real> {
  constructor(readonly force: boolean) {}
  check = (m: object) => !(m as { closed?: boolean }).closed;
  async run(m: object, real: Real): Promise<void> {
    (m as { closed?: boolean }).closed = true;
    real.closed = true;
    // A graceful close waits for the runs, moving the clock on for their backoffs meanwhile.
    const closing = real.t.close(this.force ? { force: true } : { timeoutMs: 10_000 });
    let closed = false;
    void closing.then(() => {
      closed = true;
    });
    await until(() => {
      real.clock.advance(5);
      return closed;
    }, 20_000);
    for (const run of real.runs) {
      expect(run.settled, 'every run settled when close() resolves').toBeDefined();
      // A forced close cancels what was under way: the model's expectations then loosen.
      if (this.force && run.settled?.status === 'cancelled') run.cancelled = true;
      checkRun(run);
    }
  }
  toString = () => `close(${this.force ? 'force' : ''})`;
}

class Settle implements fc.AsyncCommand<object, Real> {
  check = () => true;
  async run(_m: object, real: Real): Promise<void> {
    await settleAll(real);
    for (const run of real.runs) checkRun(run);
    checkNow(real);
  }
  toString = () => 'settle';
}

const fault = fc.constantFrom<Fault>(
  'ok',
  'ok',
  'ok',
  'spins',
  'flaky',
  'throws',
  'exits',
  'crashes',
);
const commands = [
  fc.array(fault, { minLength: 1, maxLength: 6 }).map((f) => new StartRun(f)),
  fc.nat(5).map((n) => new Cancel(n)),
  fc.integer({ min: 1, max: 200 }).map((ms) => new Advance(ms)),
  fc.constant(new Settle()),
  fc.constant(new Revive()),
  fc.boolean().map((force) => new Close(force)),
];

describe('the runtime against a model', () => {
  it('random runs, faults, cancels and clock moves: statuses, records and counts hold', async () => {
    await fc.assert(
      fc.asyncProperty(fc.commands(commands, { maxCommands: 12 }), async (cmds) => {
        const clock = manualClock();
        const real: Real = { t: modelTroupe(clock), clock, runs: [], closed: false };
        await fc.asyncModelRun(() => ({ model: {}, real }), cmds);
        await new Settle().run({}, real);
        if (!real.closed) await new Close(false).run({}, real);
        // Closed: refused from now on.
        await expect(real.t.run({ analyze: () => [] }, null)).rejects.toMatchObject({
          code: 'E_CLOSED',
        });
      }),
      { numRuns: 25 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Paths the random sequences do not take on their own.

describe('machine paths', () => {
  it('a run refused at analyzing (queue full), failed at analyzing, identifying, integrating, validating', async () => {
    const clock = manualClock();
    const t = modelTroupe(clock, { maxQueuedSubtasks: 2 });
    const one = [{ id: 'a', needs: 's', input: { op: 'echo', value: 1 } }];
    const full = await t.run(
      { analyze: () => [...one, { id: 'b', needs: 's' }, { id: 'c', needs: 's' }] },
      null,
    );
    expect(full.status === 'failed' && full.error.code).toBe('E_QUEUE_FULL');
    const analyze = await t.run(
      {
        analyze: () => {
          throw new Error('no');
        },
      },
      null,
    );
    expect(analyze.status === 'failed' && analyze.stage).toBe('analyzing');
    const identify = await t.run({ analyze: () => [{ id: 'a', needs: 'nobody' }] }, null);
    expect(identify.status === 'failed' && identify.error.code).toBe('E_NO_EXPERT');
    const integrated = await t.run({ analyze: () => one, integrate: () => 'merged' }, null);
    expect(integrated.status === 'done' && integrated.result).toBe('merged');
    const integrateFails = await t.run(
      {
        analyze: () => one,
        integrate: () => {
          throw new Error('no');
        },
      },
      null,
    );
    expect(integrateFails.status === 'failed' && integrateFails.stage).toBe('integrating');
    const validated = await t.run({ analyze: () => one, validate: () => ({ ok: true }) }, null);
    expect(validated.status === 'done' && validated.quality).toEqual({ ok: true });
    const validateFails = await t.run(
      {
        analyze: () => one,
        validate: () => {
          throw new Error('no');
        },
      },
      null,
    );
    expect(validateFails.status === 'failed' && validateFails.error.code).toBe('E_QUALITY');
    // Cancelled while analyzing (its analyze waits for the signal).
    const controller = new AbortController();
    let release: () => void = () => {};
    const waiting = t.run(
      { analyze: () => new Promise<typeof one>((resolve) => (release = () => resolve(one))) },
      null,
      { signal: controller.signal },
    );
    controller.abort();
    release();
    expect((await waiting).status).toBe('cancelled');
  });

  it('an expert full at its concurrency is busy, and ready again once a result frees a slot', async () => {
    const t = modelTroupe(manualClock(), {
      experts: [
        defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave'), concurrency: 1 }),
      ],
    });
    const outcome = await t.run(
      {
        analyze: () =>
          ['a', 'b', 'c'].map((id) => ({ id, needs: 's', input: { op: 'echo', value: id } })),
      },
      null,
    );
    expect(outcome.status).toBe('done');
    expect(taken).toContain(key('expert.busy', '', [{ id: 'expert.ready' }]));
  });

  it('experts restarted while busy and while ready, a probe failing once then for good (retired), a run aborted as its expert retires, a revive', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-model-'));
    const flag = join(dir, 'flag');
    writeFileSync(flag, '');
    const previous = process.env.TROUPE_PROBE_FLAG;
    process.env.TROUPE_PROBE_FLAG = flag;
    try {
      const clock = manualClock();
      const t = modelTroupe(clock, {
        supervision: { intensity: 1, windowMs: 10_000, restartBackoffMs: 10, maxProbeFailures: 2 },
        experts: [
          // Full at one subtask: busy when its fault comes. 'v' has room: ready.
          defineExpert({ name: 'w', skills: { w: 1 }, module: fixture('behave'), concurrency: 1 }),
          defineExpert({ name: 'v', skills: { v: 1 }, module: fixture('behave'), concurrency: 4 }),
          defineExpert({ name: 'p', skills: { p: 1 }, module: fixture('probe-flag') }),
        ],
      });
      await t.probed();
      const state = (name: string) => t.experts().find((e) => e.name === name)?.state;
      const crash = (needs: string) =>
        t.run({ analyze: () => [{ id: 'c', needs, attempts: 1, input: { op: 'exit' } }] }, null);
      /** Two faults charged at once (no retry follows): past the intensity, a restart. */
      const restart = async (needs: string) => {
        for (const run of [crash(needs), crash(needs)]) expect((await run).status).toBe('failed');
        await until(() => state(needs) === 'backingOff');
      };
      await restart('w');
      await restart('v');
      await until(() => {
        clock.advance(5);
        return state('w') === 'ready' && state('v') === 'ready';
      }, 20_000);
      // 'p' restarts and, backing off, loses its probe flag; a run admitted meanwhile waits for
      // it. Its probe fails (back off), fails again: retired, and the run is aborted.
      await restart('p');
      rmSync(flag);
      const waiting = t.run({ analyze: () => [{ id: 'x', needs: 'p', input: 1 }] }, null);
      await until(() => t.stats().subtasks.queued === 1);
      await until(() => {
        clock.advance(5);
        return state('p') === 'retired';
      }, 20_000);
      const ended = await waiting;
      expect(ended.status === 'failed' && ended.error.code).toBe('E_EXPERT_RETIRED');
      // Revived with its flag back: probing again, then ready.
      writeFileSync(flag, '');
      t.revive('p');
      await until(() => {
        clock.advance(5);
        return state('p') === 'ready';
      }, 20_000);
    } finally {
      if (previous === undefined) delete process.env.TROUPE_PROBE_FLAG;
      else process.env.TROUPE_PROBE_FLAG = previous;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
