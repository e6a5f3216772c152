/**
 * Inspection as JSON lines (`troupe run --inspect-log file.jsonl`), in troupe's own record type
 * rather than XState's events (XState 6 renames those): one line per actor registered, event
 * received or snapshot taken, which `troupe replay file.jsonl --inspect` sends to the Stately
 * inspector again.
 */
import type { InspectionEvent } from 'xstate';

/** One line of an inspection log. `v` is the format's version. */
export type InspectionRecord =
  | {
      v: 1;
      kind: 'actor';
      at: number;
      sessionId: string;
      parentId: string | undefined;
      rootId: string | undefined;
      name: string;
      /** The machine's definition as JSON (what the inspector draws), if it has one. */
      definition: string | undefined;
      snapshot: unknown;
    }
  | {
      v: 1;
      kind: 'event';
      at: number;
      sessionId: string;
      sourceId: string | undefined;
      rootId: string | undefined;
      event: unknown;
    }
  | {
      v: 1;
      kind: 'snapshot';
      at: number;
      sessionId: string;
      rootId: string | undefined;
      event: unknown;
      snapshot: unknown;
    };

interface RefLike {
  id?: string;
  sessionId: string;
  _parent?: { sessionId: string };
  logic?: { config?: unknown };
  getSnapshot(): unknown;
}

/**
 * The record of an inspection event as troupe shows it (summarised: see inspect.ts), or
 * undefined for the kinds a log leaves out (microsteps, actions).
 */
export function toRecord(event: InspectionEvent, at: number): InspectionRecord | undefined {
  const e = event as unknown as {
    type: string;
    actorRef: RefLike;
    sourceRef?: { sessionId: string };
    rootId?: string;
    event?: unknown;
    snapshot?: unknown;
  };
  const ref = e.actorRef;
  switch (e.type) {
    case '@xstate.actor': {
      const config = ref.logic?.config;
      return {
        v: 1,
        kind: 'actor',
        at,
        sessionId: ref.sessionId,
        parentId: ref._parent?.sessionId,
        rootId: e.rootId,
        // A root actor's id is its session's: its machine's id names it (as the inspector does).
        name:
          ref.id === undefined || ref.id === ref.sessionId
            ? (((config as { id?: unknown } | undefined)?.id as string | undefined) ??
              ref.sessionId)
            : ref.id,
        definition: config === undefined ? undefined : definitionOf(config),
        snapshot: snapshotOf(ref),
      };
    }
    case '@xstate.event':
      return {
        v: 1,
        kind: 'event',
        at,
        sessionId: ref.sessionId,
        sourceId: e.sourceRef?.sessionId,
        rootId: e.rootId,
        event: e.event,
      };
    case '@xstate.snapshot':
      return {
        v: 1,
        kind: 'snapshot',
        at,
        sessionId: ref.sessionId,
        rootId: e.rootId,
        event: e.event,
        snapshot: e.snapshot,
      };
    default:
      return undefined;
  }
}

/** An actor's snapshot as it registers (before its first one exists, that it is active). */
function snapshotOf(ref: RefLike): unknown {
  try {
    return ref.getSnapshot() ?? { status: 'active' };
  } catch {
    return { status: 'active' };
  }
}

/** A machine's definition as JSON: its functions by name, its cycles cut. */
function definitionOf(config: unknown): string | undefined {
  const seen = new WeakSet<object>();
  try {
    return JSON.stringify(config, (_key, value: unknown) => {
      if (typeof value === 'function') return { type: (value as { name?: string }).name ?? '' };
      if (value !== null && typeof value === 'object') {
        if (seen.has(value)) return undefined;
        seen.add(value);
      }
      return value;
    });
  } catch {
    return undefined;
  }
}

/** A record as the Stately inspector's own message (what its relay sends the page). */
export function toStately(record: InspectionRecord, version: string): Record<string, unknown> {
  const common = {
    sessionId: record.sessionId,
    rootId: record.rootId,
    createdAt: String(Math.round(record.at)),
    id: null,
    _version: version,
  };
  switch (record.kind) {
    case 'actor':
      return {
        ...common,
        type: '@xstate.actor',
        name: record.name,
        parentId: record.parentId,
        definition: record.definition,
        snapshot: record.snapshot,
      };
    case 'event':
      return { ...common, type: '@xstate.event', sourceId: record.sourceId, event: record.event };
    case 'snapshot':
      return {
        ...common,
        type: '@xstate.snapshot',
        event: record.event,
        snapshot: record.snapshot,
      };
  }
}

/** Reads a log's lines, refusing a line that is not a record of this format (with its number). */
export function parseLog(text: string, file: string): InspectionRecord[] {
  const records: InspectionRecord[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (error) {
      throw new Error(`${file}:${i + 1}: not JSON (${(error as Error).message})`);
    }
    const r = value as Partial<InspectionRecord> | null;
    if (
      r === null ||
      typeof r !== 'object' ||
      r.v !== 1 ||
      (r.kind !== 'actor' && r.kind !== 'event' && r.kind !== 'snapshot') ||
      typeof r.sessionId !== 'string'
    )
      throw new Error(`${file}:${i + 1}: not an inspection record of troupe (format 1)`);
    records.push(r as InspectionRecord);
  });
  return records;
}
