/**
 * Inspection: what a troupe shows of its machines to `createTroupe({ inspect })`, in XState's own
 * inspection events, so that whatever takes XState's (a function, an observer, the Stately
 * inspector from `@statelyai/inspect`) takes troupe's. Two things differ from a bare XState
 * actor, both so that a viewer stays cheap and every message it gets is JSON:
 *
 * - snapshots, events and action params are summaries (summary.ts): a run's context is its
 *   counts and stage, not its ledger; a batch of results is counted, not copied; an `actorRef`
 *   is a view whose `getSnapshot()` is summarised too. Each summary is bounded in size.
 * - the pool's work appears as well: each subtask attempt is a pseudo-actor (`task`), a child of
 *   its expert's actor, whose snapshots say it started, and how it ended.
 */
import type { AnyActorRef, InspectionEvent, Observer } from 'xstate';
import { describe, invalidOption, notify, TroupeError } from '../errors.js';
import { type Json, jsonLength, SUMMARY_LIMITS, type SummaryLimits, summarize } from './summary.js';

/** What `inspect` takes: a function, an observer, or an inspector that has one (`.inspect`). */
export type InspectTarget =
  | ((event: InspectionEvent) => void)
  | Partial<Observer<InspectionEvent>>
  | { inspect: Partial<Observer<InspectionEvent>> };

export const INSPECT_EXPECTED =
  'a function (inspection event) => void, an observer { next }, or an inspector with .inspect (e.g. createWebSocketInspector() from @statelyai/inspect)';

/** The largest summary one inspection event carries, in characters of JSON. */
export const MAX_SUMMARY_CHARS = 16_384;

/**
 * Reads `inspect` once: the function that receives each inspection event, or undefined. An
 * observer's `next` is called on the observer, an inspector's on its `inspect` observer.
 */
export function readInspect(
  value: unknown,
  field: string,
): ((event: InspectionEvent) => void) | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'function') return value as (event: InspectionEvent) => void;
  if (value === null || typeof value !== 'object')
    throw invalidOption(field, INSPECT_EXPECTED, value);
  let observer: unknown = value;
  let next: unknown;
  try {
    next = (value as { next?: unknown }).next;
    if (typeof next !== 'function') {
      observer = (value as { inspect?: unknown }).inspect;
      next =
        observer !== null && typeof observer === 'object'
          ? (observer as { next?: unknown }).next
          : undefined;
    }
  } catch {
    throw new TroupeError(
      'E_INVALID_OPTION',
      `${field}: expected ${INSPECT_EXPECTED}, got ${describe(value)} whose fields cannot be read`,
      { details: { field, expected: INSPECT_EXPECTED } },
    );
  }
  if (typeof next !== 'function') throw invalidOption(field, INSPECT_EXPECTED, value);
  const method = next as (event: InspectionEvent) => void;
  return (event) => method.call(observer, event);
}

/** One subtask attempt, as the pool's work shows in an inspector. */
export interface TaskView {
  runId: string;
  id: string;
  attempt: number;
  expert: string;
}

/** How an attempt ended, and on which thread (`threadId`; undefined if none said it ran it). */
export type TaskEnd =
  | { status: 'done'; runMs: number; thread: number | undefined }
  | {
      status: 'failed' | 'cancelled';
      runMs: number;
      thread: number | undefined;
      error: TroupeError | undefined;
    };

type Ref = AnyActorRef & { _parent?: AnyActorRef; logic?: unknown };

/** An inspection event as it arrives, read field by field. */
interface RawEvent {
  type: string;
  actorRef: Ref;
  event?: unknown;
  snapshot?: unknown;
  action?: unknown;
  [key: string]: unknown;
}

/** The states a task pseudo-actor goes through, for a viewer that draws its definition. */
const TASK_DEFINITION = Object.freeze({
  id: 'task',
  initial: 'running',
  states: {
    running: { on: { done: 'done', failed: 'failed', cancelled: 'cancelled' } },
    done: { type: 'final' },
    failed: { type: 'final' },
    cancelled: { type: 'final' },
  },
});

export class Inspection {
  readonly #send: (event: InspectionEvent) => void;
  readonly #limits: SummaryLimits;
  readonly #views = new WeakMap<object, Ref>();
  /** The coordinator's session: the root of every actor, pseudo-actors included. */
  #rootId: string | undefined;

  constructor(send: (event: InspectionEvent) => void, limits: SummaryLimits = SUMMARY_LIMITS) {
    this.#send = send;
    this.#limits = limits;
  }

  /** The observer handed to XState (`createActor({ inspect })`). */
  readonly observer = (event: InspectionEvent): void => {
    let shown: InspectionEvent;
    try {
      this.#rootId ??= event.rootId;
      shown = this.#convert(event);
    } catch {
      // A summary must never stop the machines: an event that cannot be summarised is skipped.
      return;
    }
    notify(this.#send, shown);
  };

  /** An attempt left for the pool: its pseudo-actor appears, running, under its expert. */
  taskStarted(task: TaskView, expertRef: AnyActorRef | undefined): void {
    const ref = this.#taskRef(task, expertRef, {
      status: 'active',
      value: 'running',
      context: taskContext(task, undefined),
    });
    notify(this.#send, {
      type: '@xstate.actor',
      actorRef: ref,
      rootId: this.#rootId ?? ref.sessionId,
    } as InspectionEvent);
    // (Its registration carries its first snapshot, running: no second message says it again.)
  }

  /** An attempt came back (or was cancelled): its pseudo-actor ends in the state it ended in. */
  taskEnded(task: TaskView, expertRef: AnyActorRef | undefined, end: TaskEnd): void {
    const snapshot = {
      status: 'done',
      value: end.status,
      context: taskContext(task, end),
      output: null,
    };
    const ref = this.#taskRef(task, expertRef, snapshot);
    notify(this.#send, {
      type: '@xstate.snapshot',
      actorRef: ref,
      rootId: this.#rootId ?? ref.sessionId,
      event: { type: end.status },
      snapshot,
    } as unknown as InspectionEvent);
  }

  #taskRef(task: TaskView, parent: AnyActorRef | undefined, snapshot: object): Ref {
    const sessionId = `task:${task.runId}:${task.id}:${task.attempt}`;
    return {
      id: `${task.id}#${task.attempt}`,
      sessionId,
      _parent: parent,
      logic: { config: TASK_DEFINITION },
      getSnapshot: () => snapshot,
      send: () => {},
    } as unknown as Ref;
  }

  #convert(event: InspectionEvent): InspectionEvent {
    const e = event as unknown as RawEvent;
    const ref = e.actorRef;
    switch (e.type) {
      case '@xstate.actor':
        return { ...e, actorRef: this.#view(ref) } as unknown as InspectionEvent;
      case '@xstate.event':
        return {
          ...e,
          actorRef: this.#view(ref),
          event: this.#event(e.event),
        } as unknown as InspectionEvent;
      case '@xstate.snapshot':
      case '@xstate.microstep':
        return {
          ...e,
          actorRef: this.#view(ref),
          event: this.#event(e.event),
          snapshot: this.#snapshot(ref, e.snapshot),
        } as unknown as InspectionEvent;
      case '@xstate.action': {
        const action = e.action as { type?: unknown; params?: unknown } | undefined;
        return {
          ...e,
          actorRef: this.#view(ref),
          action: {
            type: summarize(action?.type),
            params: this.#bounded(summarize(action?.params, this.#limits)),
          },
        } as unknown as InspectionEvent;
      }
      default:
        return event;
    }
  }

  /** A read-only view of an actor: its ids, its parent and its logic; its snapshot summarised. */
  #view(actorRef: AnyActorRef): Ref {
    const ref = actorRef as Ref;
    let view = this.#views.get(ref);
    if (view !== undefined) return view;
    view = {
      id: ref.id,
      sessionId: ref.sessionId,
      systemId: (ref as { systemId?: string }).systemId,
      src: ref.src,
      _parent: ref._parent === undefined ? undefined : this.#view(ref._parent),
      logic: ref.logic,
      getSnapshot: () => this.#snapshot(ref, ref.getSnapshot()),
      send: (sent: { type: string }) => ref.send(sent),
    } as unknown as Ref;
    this.#views.set(ref, view);
    return view;
  }

  #event(event: unknown): Json {
    const e = event as { type?: unknown } | undefined;
    if (e === undefined || e === null || typeof e !== 'object')
      return summarize(event, this.#limits);
    const type = typeof e.type === 'string' ? e.type : String(e.type);
    // An actor's start carries its input: for troupe's machines, the runtime itself.
    if (type === 'xstate.init') return { type };
    // A batch of results is counted, not copied: it may hold thousands, with their outputs.
    if (type === 'work.settled') {
      const results = (e as { results?: { ok: boolean }[] }).results ?? [];
      let ok = 0;
      for (const r of results) if (r.ok) ok++;
      return { type, results: results.length, ok, failed: results.length - ok };
    }
    return this.#bounded(summarize(event, this.#limits)) as Json;
  }

  #snapshot(ref: Ref, snapshot: unknown): Json {
    const s = snapshot as {
      status?: unknown;
      value?: unknown;
      context?: unknown;
      output?: unknown;
      error?: unknown;
      children?: Record<string, AnyActorRef>;
    };
    // (An actor registers before its first snapshot exists.)
    if (s === undefined || s === null)
      return { status: 'active', value: null, context: null, children: {} };
    const children: Record<string, Json> = {};
    for (const [key, child] of Object.entries(s.children ?? {}))
      children[key] = { sessionId: child.sessionId };
    return {
      status: typeof s.status === 'string' ? s.status : 'active',
      value: summarize(s.value, this.#limits),
      context: this.#bounded(this.#context(ref, s.context)),
      ...(s.output === undefined
        ? {}
        : { output: this.#bounded(summarize(s.output, this.#limits)) }),
      ...(s.error === undefined ? {} : { error: summarize(s.error, this.#limits) }),
      children,
    };
  }

  /** A machine's context in a few fields: what a viewer wants to see of it. */
  #context(ref: Ref, context: unknown): Json {
    const logicId = (ref.logic as { id?: unknown } | undefined)?.id;
    const c = context as Record<string, unknown> | undefined;
    if (c === undefined || c === null) return null;
    if (logicId === 'run') return runContext(c);
    if (logicId === 'expert') return expertContext(c);
    if (logicId === 'coordinator') return coordinatorContext(c);
    return summarize(c, this.#limits);
  }

  /** A summary past the size limit is replaced by what it was and how large. */
  #bounded(summary: Json): Json {
    const chars = jsonLength(summary);
    if (chars <= MAX_SUMMARY_CHARS) return summary;
    return { truncated: true, chars, limit: MAX_SUMMARY_CHARS };
  }
}

function taskContext(task: TaskView, end: TaskEnd | undefined): Json {
  const base: { [key: string]: Json } = {
    runId: task.runId,
    subtask: task.id,
    expert: task.expert,
    attempt: task.attempt,
  };
  if (end === undefined) return base;
  base.runMs = end.runMs;
  if (end.thread !== undefined) base.thread = end.thread;
  if (end.status !== 'done' && end.error !== undefined)
    base.error = { code: end.error.code, message: summarize(end.error.message) };
  return base;
}

function runContext(c: Record<string, unknown>): Json {
  const run = c.run as
    | {
        runId: string;
        plan: { name?: string };
        ledger?: {
          size: number;
          done: number;
          failed: number;
          cancelled: number;
          terminal: number;
        };
      }
    | undefined;
  const error = c.error as TroupeError | undefined;
  const ledger = run?.ledger;
  return {
    runId: run?.runId ?? null,
    plan: run?.plan.name ?? null,
    stage: summarize(c.stage),
    subtasks: ledger?.size ?? null,
    done: ledger?.done ?? 0,
    failed: ledger?.failed ?? 0,
    cancelled: ledger?.cancelled ?? 0,
    error: error === undefined ? null : { code: error.code, message: summarize(error.message) },
    result: summarize(c.result),
    quality: summarize(c.quality),
  };
}

function expertContext(c: Record<string, unknown>): Json {
  const record = c.record as
    | {
        state: string;
        reason?: string;
        restarts: number;
        slot: { active: number; concurrency: number };
      }
    | undefined;
  return {
    name: summarize(c.name),
    state: record?.state ?? null,
    active: record?.slot.active ?? 0,
    concurrency: record?.slot.concurrency ?? 0,
    restarts: record?.restarts ?? 0,
    reason: record?.reason ?? null,
  };
}

function coordinatorContext(c: Record<string, unknown>): Json {
  const core = c.core as { runs: Map<string, unknown>; experts: Map<string, unknown> } | undefined;
  const identifying = c.identifying as Set<string> | undefined;
  return {
    runs: core?.runs.size ?? 0,
    experts: core?.experts.size ?? 0,
    identifying: identifying === undefined ? [] : [...identifying].slice(0, 20),
  };
}
