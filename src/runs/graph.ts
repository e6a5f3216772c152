/**
 * Task analysis output, checked: every subtask well-formed, ids unique, dependencies known, no
 * cycle (the error names one). O(subtasks + edges). The result indexes the graph for the ledger.
 */
import * as types from 'node:util/types';
import { describe, isTroupeError, messageOf, TroupeError } from '../errors.js';
import { path, readArray, readFields, unknownKey } from '../fields.js';
import type { Level, Subtask } from '../types.js';
import { DURATION, isDuration, isLevel, isPositiveInteger, MAX_ATTEMPTS } from '../validate.js';

/** The checked graph: subtasks by index, with dependency indexes both ways. */
export interface Graph {
  subtasks: Subtask[];
  ids: string[];
  complexity: Level[];
  /** deps[i]: indexes i waits for. */
  deps: number[][];
  /** dependents[i]: indexes waiting for i. */
  dependents: number[][];
  /** Each (skill, complexity) the subtasks need, once, in order of first use. */
  kinds: { needs: string; complexity: Level }[];
}

/** The shared empty list of dependencies or dependents (see checkGraph). */
const NONE: number[] = [];

/** Every key of a {@link Subtask}. */
const SUBTASK_KEYS = ['id', 'needs', 'complexity', 'input', 'after', 'timeoutMs', 'attempts'];

function invalid(message: string, details?: Record<string, unknown>): TroupeError {
  return new TroupeError('E_INVALID_GRAPH', message, details === undefined ? {} : { details });
}

/**
 * Reads one subtask, each field once, into a subtask of troupe's own (the user's object is not
 * read again: a getter cannot change its answer later, nor throw then). Refuses unknown keys:
 * `{ afer: ['a'] }` would otherwise run without its dependency and come back done.
 */
function readSubtask(value: unknown, at: string): Subtask {
  if (!isPlainObject(value)) {
    // A class instance, a proxy, or not an object at all: read field by field (or refused).
    const fields = readFields(
      value,
      at,
      SUBTASK_KEYS,
      'an object { id, needs, ... }',
      'E_INVALID_GRAPH',
    );
    return { ...fields } as unknown as Subtask;
  }
  // The common case, a plain object, read in one pass with no allocation but the subtask.
  const source = value as Record<string, unknown>;
  let id: unknown;
  let needs: unknown;
  let complexity: unknown;
  let input: unknown;
  let after: unknown;
  let timeoutMs: unknown;
  let attempts: unknown;
  let key = '';
  try {
    for (key in source) {
      if (!Object.hasOwn(source, key)) continue;
      switch (key) {
        case 'id':
          id = source.id;
          break;
        case 'needs':
          needs = source.needs;
          break;
        case 'complexity':
          complexity = source.complexity;
          break;
        case 'input':
          input = source.input;
          break;
        case 'after':
          after = source.after;
          break;
        case 'timeoutMs':
          timeoutMs = source.timeoutMs;
          break;
        case 'attempts':
          attempts = source.attempts;
          break;
        default:
          throw unknownKey(at, key, SUBTASK_KEYS, 'E_INVALID_GRAPH');
      }
    }
  } catch (error) {
    if (isTroupeError(error)) throw error;
    throw invalid(`${path(at, key)}: its value cannot be read (${messageOf(error)})`, {
      field: path(at, key),
    });
  }
  // One shape for every subtask (a field not given reads undefined, as an absent one does): made
  // in one allocation, and read by the dispatcher at one place in the object.
  return {
    id: id as string,
    needs: needs as string,
    complexity: complexity as Level | undefined,
    input,
    after: after as string[] | undefined,
    timeoutMs: timeoutMs as number | undefined,
    attempts: attempts as number | undefined,
  };
}

/** An object literal (or one with no prototype): its own fields are all there is to read. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || types.isProxy(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function checkGraph(value: unknown, maxSubtasks = Number.POSITIVE_INFINITY): Graph {
  const { items, holes } = readArray(value, 'analyze()', 'an array of subtasks', 'E_INVALID_GRAPH');
  if (items.length > maxSubtasks) {
    throw new TroupeError(
      'E_TOO_LARGE',
      `analyze() returned ${items.length} subtasks, more than maxSubtasksPerRun (${maxSubtasks})`,
      { details: { maxSubtasksPerRun: maxSubtasks, asked: items.length } },
    );
  }
  if (holes.length > 0) {
    throw invalid(
      `subtasks[${holes[0]}]: expected an object { id, needs, ... }, got a hole in the array (analyze() returned a sparse array)`,
      { index: holes[0] },
    );
  }
  const count = items.length;
  const subtasks: Subtask[] = new Array(count);
  const index = new Map<string, number>();
  const ids: string[] = new Array(count);
  const complexity: Level[] = new Array(count);
  const kinds: Graph['kinds'] = [];
  // By skill, then by complexity: a kind is found again without making a key per subtask.
  const seen = new Map<string, boolean[]>();
  for (let i = 0; i < count; i++) {
    const at = `subtasks[${i}]`;
    const subtask = readSubtask(items[i], at);
    if (typeof subtask.id !== 'string' || subtask.id.length === 0)
      throw invalid(`${at}.id: expected a non-empty string, got ${describe(subtask.id)}`);
    if (typeof subtask.needs !== 'string' || subtask.needs.length === 0)
      throw invalid(`${at}.needs: expected a skill name, got ${describe(subtask.needs)}`);
    const c = subtask.complexity ?? 1;
    if (!isLevel(c))
      throw invalid(`${at}.complexity: expected an integer from 1 to 5, got ${describe(c)}`);
    if (subtask.after !== undefined) {
      const list = readArray(
        subtask.after,
        `${at}.after`,
        'an array of subtask ids',
        'E_INVALID_GRAPH',
      );
      const bad = list.items.findIndex((dep) => typeof dep !== 'string');
      if (list.holes.length > 0 || bad >= 0) {
        const k = list.holes[0] ?? bad;
        throw invalid(
          `${at}.after[${k}]: expected a subtask id, got ${list.holes.length > 0 ? 'a hole in the array' : describe(list.items[k])}`,
        );
      }
      subtask.after = list.items as string[];
    }
    if (subtask.timeoutMs !== undefined && !isDuration(subtask.timeoutMs))
      throw invalid(`${at}.timeoutMs: expected ${DURATION}, got ${describe(subtask.timeoutMs)}`);
    if (subtask.attempts !== undefined && !isPositiveInteger(subtask.attempts, MAX_ATTEMPTS)) {
      throw invalid(
        `${at}.attempts: expected an integer from 1 to ${MAX_ATTEMPTS}, got ${describe(subtask.attempts)}`,
      );
    }
    const previous = index.get(subtask.id);
    if (previous !== undefined) {
      throw invalid(
        `${at}.id: "${subtask.id}" is also the id of subtasks[${previous}]; ids must be unique`,
        { id: subtask.id },
      );
    }
    index.set(subtask.id, i);
    subtasks[i] = subtask;
    ids[i] = subtask.id;
    complexity[i] = c as Level;
    let levels = seen.get(subtask.needs);
    if (levels === undefined) {
      levels = [];
      seen.set(subtask.needs, levels);
    }
    if (levels[c as Level] !== true) {
      levels[c as Level] = true;
      kinds.push({ needs: subtask.needs, complexity: c as Level });
    }
  }
  // Most subtasks of a large graph wait for nothing, or nothing waits for them: they share
  // one empty list (never written to) instead of an array each.
  const deps: number[][] = new Array(subtasks.length);
  const dependents: number[][] = new Array(subtasks.length).fill(NONE);
  subtasks.forEach((subtask, i) => {
    const after = subtask.after;
    if (after === undefined || after.length === 0) {
      deps[i] = NONE;
      return;
    }
    const list: number[] = [];
    for (const dep of after) {
      const j = index.get(dep);
      if (j === undefined) {
        throw invalid(
          `subtasks[${i}].after: "${subtask.id}" waits for "${dep}", which no subtask has as its id`,
          { id: subtask.id, dep },
        );
      }
      list.push(j);
      const waiting = dependents[j] as number[];
      if (waiting === NONE) dependents[j] = [i];
      else waiting.push(i);
    }
    deps[i] = list;
  });
  const cycle = findCycle(deps);
  if (cycle !== undefined) {
    const names = cycle.map((i) => ids[i] as string);
    throw new TroupeError(
      'E_CYCLE',
      `the subtasks wait for each other in a cycle of ${names.length - 1}: ${cycleText(names)} (→ reads "waits for")`,
      {
        details: {
          cycle: names.length > MAX_CYCLE_SHOWN ? names.slice(0, MAX_CYCLE_SHOWN) : names,
          cycleLength: names.length - 1,
        },
      },
    );
  }
  return { subtasks, ids, complexity, deps, dependents, kinds };
}

/** Ids of a cycle kept in an error's details; a message names at most CYCLE_ENDS at each end. */
const MAX_CYCLE_SHOWN = 1_000;
const CYCLE_ENDS = 10;

/** `a → b → c → a`, with the middle of a long cycle left out (its message would run to megabytes). */
function cycleText(names: string[]): string {
  if (names.length <= 2 * CYCLE_ENDS + 1) return names.join(' → ');
  const left = names.length - 2 * CYCLE_ENDS;
  return `${names.slice(0, CYCLE_ENDS).join(' → ')} → … (${left} more) … → ${names.slice(-CYCLE_ENDS).join(' → ')}`;
}

/** A cycle as indexes (first repeated at the end), by iterative DFS; undefined if none. */
function findCycle(deps: number[][]): number[] | undefined {
  const WHITE = 0;
  const GREY = 1;
  const BLACK = 2;
  const color = new Uint8Array(deps.length);
  const parent = new Int32Array(deps.length).fill(-1);
  const next = new Uint32Array(deps.length);
  const stack: number[] = [];
  for (let root = 0; root < deps.length; root++) {
    if (color[root] !== WHITE) continue;
    stack.push(root);
    color[root] = GREY;
    while (stack.length > 0) {
      const node = stack[stack.length - 1] as number;
      const edges = deps[node] as number[];
      if ((next[node] as number) < edges.length) {
        const at = next[node] as number;
        next[node] = at + 1;
        const to = edges[at] as number;
        if (color[to] === GREY) {
          const path = [to];
          for (let at = node; at !== to; at = parent[at] as number) path.push(at);
          path.push(to);
          return path.reverse();
        }
        if (color[to] === WHITE) {
          color[to] = GREY;
          parent[to] = node;
          stack.push(to);
        }
      } else {
        color[node] = BLACK;
        stack.pop();
      }
    }
  }
  return undefined;
}
