/**
 * Task analysis output, checked: every subtask well-formed, ids unique, dependencies known, no
 * cycle (the error names one). O(subtasks + edges). The result indexes the graph for the ledger.
 */
import { describe, TroupeError } from '../errors.js';
import { isDuration, isPositiveInteger } from '../pool/options.js';
import type { Level, Subtask } from '../types.js';

/** The checked graph: subtasks by index, with dependency indexes both ways. */
export interface Graph {
  subtasks: Subtask[];
  ids: string[];
  complexity: Level[];
  /** deps[i]: indexes i waits for. */
  deps: number[][];
  /** dependents[i]: indexes waiting for i. */
  dependents: number[][];
}

/** The shared empty list of dependencies or dependents (see checkGraph). */
const NONE: number[] = [];

function invalid(message: string, details?: Record<string, unknown>): TroupeError {
  return new TroupeError('E_INVALID_GRAPH', message, details === undefined ? {} : { details });
}

export function checkGraph(value: unknown): Graph {
  if (!Array.isArray(value))
    throw invalid(`analyze(): expected an array of subtasks, got ${describe(value)}`);
  const subtasks = value as Subtask[];
  const index = new Map<string, number>();
  const ids: string[] = new Array(subtasks.length);
  const complexity: Level[] = new Array(subtasks.length);
  subtasks.forEach((subtask, i) => {
    if (subtask === null || typeof subtask !== 'object')
      throw invalid(
        `subtasks[${i}]: expected an object { id, needs, ... }, got ${describe(subtask)}`,
      );
    if (typeof subtask.id !== 'string' || subtask.id.length === 0)
      throw invalid(`subtasks[${i}].id: expected a non-empty string, got ${describe(subtask.id)}`);
    if (typeof subtask.needs !== 'string' || subtask.needs.length === 0) {
      throw invalid(`subtasks[${i}].needs: expected a skill name, got ${describe(subtask.needs)}`);
    }
    const c = subtask.complexity ?? 1;
    if (!(Number.isInteger(c) && c >= 1 && c <= 5))
      throw invalid(
        `subtasks[${i}].complexity: expected an integer from 1 to 5, got ${describe(c)}`,
      );
    if (
      subtask.after !== undefined &&
      !(Array.isArray(subtask.after) && subtask.after.every((d) => typeof d === 'string'))
    ) {
      throw invalid(
        `subtasks[${i}].after: expected an array of subtask ids, got ${describe(subtask.after)}`,
      );
    }
    if (subtask.timeoutMs !== undefined && !isDuration(subtask.timeoutMs)) {
      throw invalid(
        `subtasks[${i}].timeoutMs: expected a duration in ms (a number >= 0), got ${describe(subtask.timeoutMs)}`,
      );
    }
    if (subtask.attempts !== undefined && !isPositiveInteger(subtask.attempts)) {
      throw invalid(
        `subtasks[${i}].attempts: expected a positive integer, got ${describe(subtask.attempts)}`,
      );
    }
    const previous = index.get(subtask.id);
    if (previous !== undefined) {
      throw invalid(
        `subtasks[${i}].id: "${subtask.id}" is also the id of subtasks[${previous}]; ids must be unique`,
        { id: subtask.id },
      );
    }
    index.set(subtask.id, i);
    ids[i] = subtask.id;
    complexity[i] = c as Level;
  });
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
      `the subtasks wait for each other in a cycle: ${names.join(' → ')} (→ reads "waits for")`,
      { details: { cycle: names } },
    );
  }
  return { subtasks, ids, complexity, deps, dependents };
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
