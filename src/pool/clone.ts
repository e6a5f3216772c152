/**
 * Finding the value that cannot cross a thread boundary. Runs only after a clone has failed,
 * so it may clone sub-values freely to narrow down the culprit.
 */
import { describe } from '../errors.js';

/** Where a value fails to clone, and what is there. */
export interface UncloneableAt {
  /** A JavaScript-like path from the root, e.g. `input.items[3].callback`. */
  path: string;
  /** What the value at that path is. */
  what: string;
}

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

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function keyPath(parent: string, key: string): string {
  return IDENTIFIER.test(key) ? `${parent}.${key}` : `${parent}[${JSON.stringify(key)}]`;
}

/** Returns where `value` fails to clone, or undefined when it clones. */
export function findUncloneable(value: unknown, root: string): UncloneableAt | undefined {
  if (cloneable(value)) return undefined;
  return narrow(value, root, new Set());
}

function narrow(value: unknown, path: string, seen: Set<object>): UncloneableAt {
  if (value === null || typeof value !== 'object' || seen.has(value)) {
    return { path, what: describe(value) };
  }
  seen.add(value);
  const children: [string, unknown][] = [];
  if (Array.isArray(value)) {
    value.forEach((item, index) => {
      children.push([`${path}[${index}]`, item]);
    });
  } else if (value instanceof Map) {
    let index = 0;
    for (const [key, item] of value) {
      children.push([`${path}.<key ${index}>`, key]);
      children.push([
        `${path}.get(${typeof key === 'string' ? JSON.stringify(key) : `<key ${index}>`})`,
        item,
      ]);
      index++;
    }
  } else if (value instanceof Set) {
    let index = 0;
    for (const item of value) children.push([`${path}.<value ${index++}>`, item]);
  } else {
    for (const key of Object.keys(value)) {
      children.push([keyPath(path, key), (value as Record<string, unknown>)[key]]);
    }
  }
  for (const [childPath, child] of children) {
    // An ancestor met again (a cycle) is being narrowed already: look elsewhere.
    if (typeof child === 'object' && child !== null && seen.has(child)) continue;
    if (!cloneable(child)) return narrow(child, childPath, seen);
  }
  // Every part clones on its own: the object itself is the problem (a WeakMap, a Promise, ...).
  return { path, what: describe(value) };
}
