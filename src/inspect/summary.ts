/**
 * What troupe shows of a value to an inspector: a JSON-safe copy of bounded size, made without
 * running any user code (no getter is called, a proxy is named, not opened), so that whatever a
 * plan, an expert or a handler returns can be shown and never hangs, throws or floods a viewer.
 */
import * as types from 'node:util/types';
import { describe, isTroupeError } from '../errors.js';

/** How much of a value a summary keeps. */
export interface SummaryLimits {
  /** Levels of nesting kept; deeper values are described in words. */
  depth: number;
  /** Items kept of an array, keys of an object; the rest are counted. */
  items: number;
  /** Characters kept of a string. */
  chars: number;
}

const MAP_SIZE = Object.getOwnPropertyDescriptor(Map.prototype, 'size')?.get as () => unknown;
const SET_SIZE = Object.getOwnPropertyDescriptor(Set.prototype, 'size')?.get as () => unknown;

export const SUMMARY_LIMITS: SummaryLimits = Object.freeze({ depth: 4, items: 20, chars: 200 });

/** JSON for a value of JSON's own: what `JSON.stringify` writes as is, and parses back the same. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * A JSON-safe, bounded copy of `value`. Numbers that JSON cannot hold (NaN, ±Infinity) and
 * bigints become strings; functions and symbols are described; errors keep their name, code and
 * message; maps, sets and binary data are counted; cycles and what lies past the limits are
 * described in words.
 */
export function summarize(value: unknown, limits: SummaryLimits = SUMMARY_LIMITS): Json {
  return walk(value, limits, limits.depth, new Set());
}

function walk(value: unknown, limits: SummaryLimits, depth: number, seen: Set<object>): Json {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return `${value}n`;
    case 'string':
      return value.length > limits.chars
        ? `${value.slice(0, limits.chars)}… (${value.length} characters)`
        : value;
    case 'symbol':
    case 'function':
      return describe(value);
  }
  if (value === null) return null;
  const object = value as object;
  if (types.isProxy(object)) return describe(object);
  if (seen.has(object)) return '(a cycle)';
  if (isTroupeError(object))
    return { name: 'TroupeError', code: object.code, message: text(object.message, limits) };
  if (types.isNativeError(object))
    return {
      name: dataOf(object, 'name', 'Error'),
      message: text(dataOf(object, 'message', ''), limits),
    };
  // Built-in getters and methods, called on the object: a subclass cannot put its own in.
  if (types.isMap(object)) return { type: 'Map', size: MAP_SIZE.call(object) as number };
  if (types.isSet(object)) return { type: 'Set', size: SET_SIZE.call(object) as number };
  if (ArrayBuffer.isView(object) || types.isAnyArrayBuffer(object)) return describe(object);
  if (types.isDate(object)) {
    const time = Date.prototype.getTime.call(object);
    return Number.isNaN(time) ? 'an invalid Date' : new Date(time).toISOString();
  }
  if (depth === 0) return describe(object);
  seen.add(object);
  try {
    if (Array.isArray(object)) {
      const out: Json[] = [];
      const kept = Math.min(object.length, limits.items);
      for (let i = 0; i < kept; i++) {
        const slot = Object.getOwnPropertyDescriptor(object, i);
        out.push(
          slot === undefined
            ? null
            : 'value' in slot
              ? walk(slot.value, limits, depth - 1, seen)
              : '(a getter)',
        );
      }
      if (object.length > kept) out.push(`… ${object.length - kept} more`);
      return out;
    }
    const out: { [key: string]: Json } = {};
    const keys = Object.keys(object);
    const kept = Math.min(keys.length, limits.items);
    for (let i = 0; i < kept; i++) {
      const key = keys[i] as string;
      const slot = Object.getOwnPropertyDescriptor(object, key);
      if (slot === undefined) continue;
      const shown = 'value' in slot ? walk(slot.value, limits, depth - 1, seen) : '(a getter)';
      // An own field, whatever the key (`__proto__` included).
      Object.defineProperty(out, key, {
        value: shown,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    if (keys.length > kept) out['…'] = `${keys.length - kept} more keys`;
    return out;
  } finally {
    seen.delete(object);
  }
}

/** A data property's value if it is a string, else `fallback` (no getter is called). */
function dataOf(object: object, key: string, fallback: string): string {
  for (let o: object | null = object; o !== null; o = Object.getPrototypeOf(o)) {
    const slot = Object.getOwnPropertyDescriptor(o, key);
    if (slot !== undefined)
      return 'value' in slot && typeof slot.value === 'string' ? slot.value : fallback;
  }
  return fallback;
}

function text(value: string, limits: SummaryLimits): string {
  return value.length > limits.chars ? `${value.slice(0, limits.chars)}…` : value;
}

/** Bytes of a summary written as JSON (UTF-16 code units: what a message limit counts). */
export function jsonLength(value: Json): number {
  return JSON.stringify(value).length;
}
