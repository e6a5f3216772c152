/**
 * Finding the value that cannot cross a thread boundary. Runs only after a clone has failed, so
 * it may clone sub-values freely to narrow down the culprit. It never throws and never recurses
 * (a value nested 10 000 levels deep is searched with a stack of its own), and it reads a value
 * without trusting it: a proxy is reported, not entered; a getter that throws is reported at its
 * path.
 */
import * as types from 'node:util/types';
import { describe, messageOf } from '../errors.js';
import { path as keyPath } from '../fields.js';

/** Where a value fails to clone, and what is there. */
export interface UncloneableAt {
  /** A JavaScript-like path from the root, e.g. `input.items[3].callback`. */
  path: string;
  /** What the value at that path is. */
  what: string;
}

/**
 * Deeper than this, a value is reported as too deep rather than searched further: structured
 * clone itself gives up far sooner (it recurses on the native stack).
 */
const MAX_DEPTH = 100_000;
/** Values visited at most: the search is a failure path, not worth unbounded time. */
const MAX_VISITS = 1_000_000;

function cloneable(value: unknown): boolean {
  if (value === null) return true;
  const type = typeof value;
  if (type === 'function' || type === 'symbol') return false;
  if (type !== 'object') return true;
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

/** Returns where `value` fails to clone, or undefined when it clones. Never throws. */
export function findUncloneable(value: unknown, root: string): UncloneableAt | undefined {
  try {
    if (cloneable(value)) return undefined;
    return search(value, root) ?? { path: root, what: describe(value) };
  } catch {
    return { path: root, what: describe(value) };
  }
}

/** What structured clone cannot carry by its own kind (never by what it holds). */
function refused(value: unknown): string | undefined {
  if (typeof value === 'function' || typeof value === 'symbol') return describe(value);
  if (value === null || typeof value !== 'object') return undefined;
  if (types.isProxy(value)) return 'a proxy';
  if (types.isWeakMap(value) || types.isWeakSet(value) || types.isPromise(value))
    return describe(value);
  return undefined;
}

type Child = [path: string, value: unknown];

/**
 * The children of a container, read without trusting it: a getter that throws becomes a culprit
 * of its own (returned as a string). Arrays, maps, sets and objects have children; anything
 * else is a leaf.
 */
function childrenOf(value: object, path: string): Child[] | string {
  const children: Child[] = [];
  if (Array.isArray(value)) {
    // Its own keys, not every index up to its length: a hole clones, and a sparse array of
    // length 2³² − 1 has few keys but would take the memory of the process to walk.
    for (const key of Object.keys(value)) {
      const at = /^\d+$/.test(key) ? `${path}[${key}]` : keyPath(path, key);
      try {
        children.push([at, (value as unknown as Record<string, unknown>)[key]]);
      } catch (error) {
        return `${at}\u0000a getter that throws (${messageOf(error)})`;
      }
    }
    return children;
  }
  try {
    return entriesOf(value, path, children);
  } catch (error) {
    return `${path}\u0000${describe(value)} whose parts cannot be read (${messageOf(error)})`;
  }
}

function entriesOf(value: object, path: string, children: Child[]): Child[] | string {
  if (types.isMap(value)) {
    let index = 0;
    for (const [key, item] of value as Map<unknown, unknown>) {
      children.push([`${path}.<key ${index}>`, key]);
      children.push([
        `${path}.get(${typeof key === 'string' ? JSON.stringify(key) : `<key ${index}>`})`,
        item,
      ]);
      index++;
    }
    return children;
  }
  if (types.isSet(value)) {
    let index = 0;
    for (const item of value as Set<unknown>) children.push([`${path}.<value ${index++}>`, item]);
    return children;
  }
  for (const key of Object.keys(value)) {
    let child: unknown;
    try {
      child = (value as Record<string, unknown>)[key];
    } catch (error) {
      return `${keyPath(path, key)}\u0000a getter that throws (${messageOf(error)})`;
    }
    children.push([keyPath(path, key), child]);
  }
  return children;
}

/**
 * Depth first, in order, each object once: the first value that cannot be cloned by its kind
 * (a function, a symbol, a proxy, a WeakMap, a promise, a getter that throws). A container
 * whose parts all clone and that still does not clone is not reported at once: it may hold a
 * reference back to an ancestor, and the culprit is then elsewhere in that ancestor. Only if
 * nothing is found is the deepest such container reported.
 */
function search(value: unknown, root: string): UncloneableAt | undefined {
  const seen = new Set<object>();
  const stack: { path: string; value: unknown; depth: number }[] = [
    { path: root, value, depth: 0 },
  ];
  let visits = 0;
  let suspect: UncloneableAt | undefined;
  let deepest = 0;
  while (stack.length > 0) {
    const { path, value: node, depth } = stack.pop() as (typeof stack)[number];
    const kind = refused(node);
    if (kind !== undefined) return { path, what: kind };
    if (node === null || typeof node !== 'object' || seen.has(node)) continue;
    seen.add(node);
    if (++visits > MAX_VISITS) break;
    if (depth > deepest) deepest = depth;
    if (depth >= MAX_DEPTH)
      return { path, what: `a value nested more than ${MAX_DEPTH} levels deep` };
    const children = childrenOf(node, path);
    if (typeof children === 'string') {
      const [at, what] = children.split('\u0000') as [string, string];
      return { path: at, what };
    }
    const plain = Array.isArray(node) || types.isMap(node) || types.isSet(node) || isOrdinary(node);
    // A leaf structured clone refuses (a class with internal slots it does not know, a socket):
    // remembered, and reported if nothing more precise turns up.
    if (!plain && suspect === undefined && children.length === 0 && !cloneable(node))
      suspect = { path, what: describe(node) };
    // Children pushed in reverse: popped in their order.
    for (let index = children.length - 1; index >= 0; index--) {
      const [childPath, child] = children[index] as Child;
      stack.push({ path: childPath, value: child, depth: depth + 1 });
    }
  }
  if (suspect !== undefined) return suspect;
  if (deepest > 1_000)
    return { path: root, what: `a value nested ${deepest} levels deep (too deep to clone)` };
  return undefined;
}

/** An object structured clone copies field by field (any prototype but a host type's). */
function isOrdinary(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
