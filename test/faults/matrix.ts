// The fault matrix (docs/RELIABILITY.md): every fault × every place it can strike, each cell a
// fresh troupe, asserting the outcome, the error code, and that every subtask ends exactly once
// — from the records, and from what the threads report they started, so that work that starts
// after its subtask was settled is caught. `test/faults/*.test.ts` run it with 1 and 2 threads.
import { expect } from 'vitest';
import {
  defineExpert,
  type ErrorCode,
  type ExpertDefinition,
  type Outcome,
  type Troupe,
  type TroupeOptions,
} from '../../dist/src/index.js';
import { fixture, settle, until } from '../helpers.js';

// ---------------------------------------------------------------------------------------------
// What the threads report (see test/fixtures/faulty.mjs for the layout).

const STRIDE = 12;
// Node 20 has Atomics.waitAsync; the ES2023 lib does not declare it.
const waitAsync = (
  Atomics as unknown as {
    waitAsync: (
      a: Int32Array,
      i: number,
      v: number,
      t: number,
    ) => { async: boolean; value: Promise<string> | string };
  }
).waitAsync;

async function waitAbove(flags: Int32Array, index: number, value: number): Promise<void> {
  for (;;) {
    const seen = Atomics.load(flags, index);
    if (seen > value) return;
    const wait = waitAsync(flags, index, seen, 1000);
    if (wait.async) await wait.value;
  }
}

interface Where {
  thread: number;
  /** A global order of the stamped starts. */
  seq: number;
  /** `ctx.batch` of the start: its place in the message its thread received. */
  index: number;
  size: number;
}

export class Starts {
  readonly sab: SharedArrayBuffer;
  readonly #flags: Int32Array;
  readonly slots: number;

  constructor(slots: number) {
    this.slots = slots;
    this.sab = new SharedArrayBuffer((slots + 1) * STRIDE * 4);
    this.#flags = new Int32Array(this.sab);
  }

  #at(slot: number, k: number): number {
    return Atomics.load(this.#flags, STRIDE * (slot + 1) + k);
  }

  of(slot: number): number {
    return this.#at(slot, 0);
  }

  /** Resolves once subtask `slot` has started `count` times (a handshake, no sleep). */
  started(slot: number, count = 1): Promise<void> {
    return waitAbove(this.#flags, STRIDE * (slot + 1), count - 1);
  }

  /** Says on the main thread that every subtask has settled. */
  settleAll(): void {
    for (let slot = 0; slot < this.slots; slot++)
      Atomics.store(this.#flags, STRIDE * (slot + 1) + 1, 1);
  }

  /** Starts that found their subtask settled while their signal did not read aborted. */
  violations(): number {
    let sum = 0;
    for (let slot = 0; slot < this.slots; slot++) sum += this.#at(slot, 2);
    return sum;
  }

  /** Starts after settlement whose signal read aborted: begun by the thread as the cancel came. */
  lateAborted(slot: number): number {
    return this.#at(slot, 3);
  }

  #where(slot: number, at: number): Where {
    const [thread, seq, index, size] = [0, 1, 2, 3].map((k) => this.#at(slot, at + k));
    return { thread, seq, index, size } as Where;
  }

  first(slot: number): Where {
    return this.#where(slot, 4);
  }

  fault(slot: number): Where {
    return this.#where(slot, 8);
  }
}

/** A handshake the fixture's `gate` input waits on: `opened()` once it runs, `open()` to go on. */
export function gate() {
  const sab = new SharedArrayBuffer(8);
  const flags = new Int32Array(sab);
  return {
    sab,
    opened: (count = 1) => waitAbove(flags, 0, count - 1),
    open(): void {
      Atomics.store(flags, 1, 1);
      Atomics.notify(flags, 1);
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The faults a handler (or the expert's validate) can commit.

export interface TaskFault {
  name: string;
  /** The fixture's fault. */
  kind: string;
  /** The attempt's error code; null: the attempt succeeds (the fault is left behind). */
  code: ErrorCode | null;
  /** Whether the runtime tries such a failure again. */
  retried: boolean;
  /** Whether the fault ends the thread (tasks it had finished but not reported run again). */
  endsThread: boolean;
  /** A subtask time limit the fault needs (endless work). */
  timeoutMs?: number;
}

export const TASK_FAULTS: TaskFault[] = [
  { name: 'throws', kind: 'throw', code: 'E_TASK_FAILED', retried: true, endsThread: false },
  {
    name: 'rejects with a string',
    kind: 'rejectString',
    code: 'E_TASK_FAILED',
    retried: true,
    endsThread: false,
  },
  {
    name: 'rejects with null',
    kind: 'rejectNull',
    code: 'E_TASK_FAILED',
    retried: true,
    endsThread: false,
  },
  {
    name: 'rejects with an object whose getters throw',
    kind: 'rejectHostile',
    code: 'E_TASK_FAILED',
    retried: true,
    endsThread: false,
  },
  {
    name: 'throws later from its own timer',
    kind: 'timerThrows',
    code: 'E_TASK_FAILED',
    retried: true,
    endsThread: true,
  },
  {
    name: 'returns and leaves a throwing timer behind',
    kind: 'throwAfterReturn',
    code: null,
    retried: true,
    endsThread: true,
  },
  {
    name: 'calls process.exit',
    kind: 'exit',
    code: 'E_WORKER_CRASHED',
    retried: true,
    endsThread: true,
  },
  {
    name: 'loops forever',
    kind: 'loop',
    code: 'E_TIMEOUT',
    retried: true,
    endsThread: true,
    timeoutMs: 300,
  },
  {
    name: 'runs out of memory',
    kind: 'oom',
    code: 'E_WORKER_OOM',
    retried: true,
    endsThread: true,
  },
  {
    name: 'hangs on a promise forever',
    kind: 'hang',
    code: 'E_TIMEOUT',
    retried: true,
    endsThread: true,
    timeoutMs: 300,
  },
  {
    name: 'returns something uncloneable',
    kind: 'uncloneable',
    code: 'E_NOT_CLONEABLE',
    retried: false,
    endsThread: true,
  },
  {
    name: 'returns something too large',
    kind: 'tooLarge',
    code: 'E_TOO_LARGE',
    retried: false,
    endsThread: false,
  },
  {
    name: "fails the expert's validate, which throws",
    kind: 'invalid',
    code: 'E_QUALITY',
    retried: true,
    endsThread: false,
  },
];

export type TaskPlace =
  | 'first attempt'
  | 'retry'
  | 'last attempt'
  | 'batch, first item'
  | 'batch, middle item'
  | 'batch, last item'
  | 'taken ahead'
  | 'during another run'
  | 'queue full';

export const TASK_PLACES: TaskPlace[] = [
  'first attempt',
  'retry',
  'last attempt',
  'batch, first item',
  'batch, middle item',
  'batch, last item',
  'taken ahead',
  'during another run',
  'queue full',
];

export const BATCH = 3;
const module = fixture('faulty');

/** An expert's `validate` that throws a null-prototype object at the fixture's `invalid`. */
function validate(output: unknown): true {
  if ((output as { invalid?: boolean } | null)?.invalid === true) throw Object.create(null);
  return true;
}

export function expert(name: string, threads: number, batch: number | 'auto'): ExpertDefinition {
  return defineExpert({
    name,
    skills: { s: 1 },
    module,
    // Takes subtasks ahead: a batch (or one) per thread, more than the threads can run.
    concurrency: BATCH * threads + 2,
    batch,
    validate,
  });
}

export function troupeOptions(threads: number, extra: Partial<TroupeOptions> = {}): TroupeOptions {
  return {
    threads,
    retryBackoffMs: 1,
    maxRetryBackoffMs: 2,
    cancelGraceMs: 50,
    // A heap limit the `oom` fault reaches quickly, an output limit `tooLarge` passes.
    resourceLimits: { maxOldGenerationSizeMb: 48, maxYoungGenerationSizeMb: 8 },
    maxOutputBytes: 1_000_000,
    supervision: { restartBackoffMs: 1, maxRestartBackoffMs: 2 },
    experts: [expert('x', threads, 'auto')],
    ...extra,
  };
}

export interface Sub {
  id: string;
  needs: string;
  input: Record<string, unknown>;
  attempts?: number;
  timeoutMs?: number;
  after?: string[];
}

/** The subtasks of a run, each with its own start-count slot from `slot0`. */
export function subtasks(
  starts: Starts,
  count: number,
  slot0: number,
  prefix: string,
  each: (i: number) => Partial<Sub> & { input?: Record<string, unknown> } = () => ({}),
): Sub[] {
  return Array.from({ length: count }, (_, i) => {
    const extra = each(i);
    return {
      id: `${prefix}${i}`,
      needs: 's',
      attempts: 1,
      ...extra,
      input: { sab: starts.sab, slot: slot0 + i, ...extra.input },
    };
  });
}

export const plan = (subs: Sub[]) => ({ analyze: () => subs });

/** Runs echo subtasks until the pool has measured the module (so it batches and looks ahead). */
export async function warm(t: Troupe, starts: Starts, slot0: number, count: number): Promise<void> {
  const outcome = await t.run(plan(subtasks(starts, count, slot0, 'warm')), null);
  expect(outcome.status).toBe('done');
}

/**
 * A run of `count` subtasks tried while the queue may be full: its refusal's code (a rejected
 * `run()` when the bound is reached already, an outcome failed at 'analyzing' when the run
 * would pass it), or 'admitted'.
 */
export async function refusal(t: Troupe, count: number): Promise<string> {
  const tried = await settle(t.run(plan(subtasks(new Starts(count), count, 0, 'r')), null));
  if (!tried.ok) return tried.code;
  const outcome = tried.value;
  if (outcome.status === 'failed' && outcome.stage === 'analyzing') return outcome.error.code;
  return 'admitted';
}

export interface Check {
  troupe: Troupe;
  starts: Starts;
  /** Every outcome of the cell, each with the slot of its first subtask. */
  outcomes: { outcome: Outcome; slot0: number; subtasks: number }[];
  /** Faults that end a thread may make a finished, unreported task of its batch run again. */
  mayRerun: boolean;
  /** The cell closed the troupe. */
  closed?: boolean;
}

/**
 * What must hold after any cell: one terminal record per subtask; on the threads, no start
 * after settlement without an aborted signal, a done subtask started at least once, and (unless
 * a thread was ended under a batch) exactly as many starts as the record's attempts; a later
 * run goes through at once; close() settles; nothing outstanding.
 */
export async function checkAfter(check: Check): Promise<void> {
  const { troupe: t, starts, outcomes } = check;
  check.starts.settleAll();
  for (const { outcome, slot0, subtasks: count } of outcomes) {
    expect(outcome.records).toHaveLength(count);
    const ids = new Set(outcome.records.map((r) => r.id));
    expect(ids.size).toBe(count);
    for (const [k, record] of outcome.records.entries()) {
      expect(['done', 'failed', 'cancelled']).toContain(record.status);
      const started = starts.of(slot0 + k);
      if (record.status === 'done') expect(started).toBeGreaterThanOrEqual(1);
      if (!check.mayRerun && record.status !== 'cancelled')
        expect(started, `starts of ${record.id} (${record.status})`).toBe(record.attempts);
      if (record.status === 'cancelled')
        expect(started, `starts of cancelled ${record.id}`).toBeLessThanOrEqual(
          record.attempts + (check.mayRerun ? BATCH : 0),
        );
      if (record.status !== 'done') expect(record.error?.code).toBeTypeOf('string');
    }
  }
  // A run after it goes through at once: nothing of the cell holds a thread or a slot (or, if
  // the cell closed the troupe, it is refused).
  const probe = new Starts(1);
  const next = await settle(t.run(plan(subtasks(probe, 1, 0, 'next')), null));
  if (check.closed === true) expect(next.ok ? 'admitted' : next.code).toBe('E_CLOSED');
  else expect(next.ok && next.value.status).toBe('done');
  await t.close({ timeoutMs: 10_000 });
  // Once its outcome resolved, no subtask of the cell started again, but one a thread had begun
  // as it was cancelled (its handler's first line may come later, reading its signal aborted).
  expect(starts.violations(), 'subtasks that started after their settlement').toBe(0);
  const begun = Array.from({ length: starts.slots }, (_, s) => starts.lateAborted(s));
  const cancelled = new Set<number>();
  for (const { outcome, slot0 } of outcomes)
    for (const [k, record] of outcome.records.entries())
      if (record.status === 'cancelled') cancelled.add(slot0 + k);
  for (const [s, n] of begun.entries())
    if (n > 0) {
      expect(cancelled.has(s), `slot ${s} started late but was not cancelled`).toBe(true);
      expect(n, `late starts of slot ${s}`).toBe(1);
    }
  const stats = t.stats();
  expect(stats.subtasks).toMatchObject({ queued: 0, running: 0, outstanding: 0 });
}

interface TaskExpect {
  status: Outcome['status'];
  attempts: number;
  code: ErrorCode | undefined;
}

/** What the target's record must say when `fault` strikes its attempt `at` of `attempts`. */
function expected(fault: TaskFault, attempts: number, at: number): TaskExpect {
  if (fault.code === null) return { status: 'done', attempts: at, code: undefined };
  if (!fault.retried) return { status: 'failed', attempts: at, code: fault.code };
  if (at < attempts) return { status: 'done', attempts: at + 1, code: undefined };
  return { status: 'failed', attempts, code: fault.code };
}

/**
 * A cell's troupe for a place (a batching expert for the batch places, a bound of 3 with the
 * queue full), its start counters, and `take(n)`: the next n slots. The batch and lookahead
 * places warm the expert first, so that the pool batches and looks ahead.
 */
export async function cellOf(
  open: (options: TroupeOptions) => Troupe,
  threads: number,
  place: TaskPlace,
  extra: Partial<TroupeOptions> = {},
) {
  const inBatch = place.startsWith('batch');
  const starts = new Starts(64);
  const t = open(
    troupeOptions(threads, {
      ...extra,
      ...(inBatch ? { experts: [expert('x', threads, BATCH)] } : {}),
      ...(place === 'queue full' ? { maxQueuedSubtasks: 3 } : {}),
    }),
  );
  let slot = 0;
  const take = (n: number) => {
    const from = slot;
    slot += n;
    return from;
  };
  if (inBatch || place === 'taken ahead') await warm(t, starts, take(12), 12);
  return { t, starts, take, inBatch };
}

/**
 * One task-fault cell: builds the place, runs it, and asserts the target's record, the run's
 * outcome, where the fault struck (batch, lookahead) and the invariants of `checkAfter`.
 */
export async function taskCell(
  open: (options: TroupeOptions) => Troupe,
  threads: number,
  fault: TaskFault,
  place: TaskPlace,
): Promise<void> {
  const { t, starts, take, inBatch } = await cellOf(open, threads, place);
  const check: Check = { troupe: t, starts, outcomes: [], mayRerun: fault.endsThread };
  const target = (extra: Partial<Sub>, attempts: number, plainAt: number[], at: number) => ({
    attempts,
    ...(fault.timeoutMs === undefined ? {} : { timeoutMs: fault.timeoutMs }),
    ...extra,
    input: { fault: fault.kind, at: [at], plainAt, ...extra.input },
  });
  let attempts = 2;
  let plainAt: number[] = [];
  let at = 1;
  if (place === 'retry') [attempts, plainAt, at] = [3, [1], 2];
  if (place === 'last attempt') [attempts, plainAt, at] = [2, [1], 2];
  const want = expected(fault, attempts, at);
  let targetSlot: number;
  let outcome: Outcome;

  if (inBatch) {
    // One batch per thread; the target is item 0, 1 or 2 of the first one.
    const index = place === 'batch, first item' ? 0 : place === 'batch, middle item' ? 1 : 2;
    const count = BATCH * threads;
    const slot0 = take(count);
    targetSlot = slot0 + index;
    outcome = await t.run(
      plan(
        subtasks(starts, count, slot0, 'b', (i) =>
          i === index ? target({}, attempts, plainAt, at) : {},
        ),
      ),
      null,
    );
    check.outcomes.push({ outcome, slot0, subtasks: count });
    // Where it struck, as its thread saw it (ctx.batch): item `index` of a message of BATCH.
    const struck = starts.fault(targetSlot);
    expect({ index: struck.index, size: struck.size }, 'its place in its batch').toEqual({
      index,
      size: BATCH,
    });
  } else if (place === 'taken ahead') {
    // Every thread held by a gated subtask of one run; the target, in a run started then, is
    // handed out ahead, behind one of them (one per thread while runs share the expert).
    const g = gate();
    const holdSlot0 = take(threads);
    const slot0 = take(1);
    targetSlot = slot0;
    const holding = t.run(
      plan(subtasks(starts, threads, holdSlot0, 'h', () => ({ input: { gate: g.sab } }))),
      null,
    );
    await g.opened(threads);
    const running = t.run(
      plan(subtasks(starts, 1, slot0, 'a', () => target({}, attempts, plainAt, at))),
      null,
    );
    await until(() => t.stats().subtasks.running === threads + 1);
    expect(starts.of(targetSlot), 'the target waits, taken ahead').toBe(0);
    g.open();
    const [held, mine] = await Promise.all([holding, running]);
    expect(held.status).toBe('done');
    outcome = mine;
    check.outcomes.push({ outcome: held, slot0: holdSlot0, subtasks: threads });
    check.outcomes.push({ outcome, slot0, subtasks: 1 });
  } else if (place === 'during another run') {
    // Another run, admitted first: a chain of short subtasks (one ready at a time, so that it
    // shares the threads with the target's run), held open in its integrate until the target
    // has struck: the fault strikes while it is under way, and it ends unharmed.
    const otherCount = 12;
    const otherSlot0 = take(otherCount);
    const slot0 = take(3);
    targetSlot = slot0;
    let struck: () => void = () => {};
    const hasStruck = new Promise<void>((resolve) => {
      struck = resolve;
    });
    const other = t.run(
      {
        analyze: () =>
          subtasks(starts, otherCount, otherSlot0, 'o', (i) => ({
            input: { spinMs: 2 },
            ...(i > 0 ? { after: [`o${i - 1}`] } : {}),
          })),
        integrate: async () => {
          await hasStruck;
          return 'integrated';
        },
      },
      null,
    );
    const mine = t.run(
      plan(
        subtasks(starts, 3, slot0, 'm', (i) => (i === 0 ? target({}, attempts, plainAt, at) : {})),
      ),
      null,
    );
    await Promise.race([starts.started(targetSlot, at), mine]);
    struck();
    const [a, b] = await Promise.all([other, mine]);
    expect(a.status, 'the other run').toBe('done');
    outcome = b;
    check.outcomes.push({ outcome: a, slot0: otherSlot0, subtasks: otherCount });
    check.outcomes.push({ outcome, slot0, subtasks: 3 });
  } else if (place === 'queue full') {
    // A bound of 3, all taken by this run until the target ends (the others wait for it). The
    // target holds at a gate on its first attempt until a run has been refused; its fault then
    // strikes with the queue still full.
    const g = gate();
    const slot0 = take(3);
    targetSlot = slot0;
    const running = t.run(
      plan(
        subtasks(starts, 3, slot0, 'q', (i) =>
          i === 0
            ? target({ input: { gate: g.sab, gateAt: [1] } }, attempts, plainAt, at)
            : { after: ['q0'] },
        ),
      ),
      null,
    );
    await g.opened();
    expect(await refusal(t, 1), 'a run while the queue is full').toBe('E_QUEUE_FULL');
    g.open();
    outcome = await running;
    check.outcomes.push({ outcome, slot0, subtasks: 3 });
    // The bound is free again once the run ended, whatever the fault.
    const again = await t.run(plan(subtasks(new Starts(3), 3, 0, 'r')), null);
    expect(again.status).toBe('done');
  } else {
    const slot0 = take(1 + threads);
    targetSlot = slot0;
    outcome = await t.run(
      plan(
        subtasks(starts, 1 + threads, slot0, 'f', (i) =>
          i === 0 ? target({}, attempts, plainAt, at) : {},
        ),
      ),
      null,
    );
    check.outcomes.push({ outcome, slot0, subtasks: 1 + threads });
  }

  // The target's record, and the run's outcome.
  const last = check.outcomes[check.outcomes.length - 1] as (typeof check.outcomes)[number];
  const record = outcome.records[targetSlot - last.slot0];
  expect(record, 'the target record').toBeDefined();
  if (record === undefined) return;
  expect({ status: record.status, attempts: record.attempts, code: record.error?.code }).toEqual(
    want,
  );
  if (fault.code !== null) {
    const faulted = record.errors[at - 1];
    expect(faulted?.code, `attempt ${at}'s error`).toBe(fault.code);
  }
  expect(outcome.status).toBe(want.status === 'done' ? 'done' : 'failed');
  if (outcome.status === 'failed') expect(outcome.error.code).toBe(want.code);
  await checkAfter(check);
}
