/** What crosses between threads, weighed before it goes (maxInputBytes, maxOutputBytes). */
import * as types from 'node:util/types';

/**
 * What a subtask's input or output may weigh by default, bytes (64 MiB): enough for any input a
 * handler reads from a path or a URL, and far below what would strain the main thread's heap.
 */
export const DEFAULT_PAYLOAD_BYTES = 64 * 1024 * 1024;

/**
 * The weight of a value about to cross between threads, estimated without copying it: 1 byte a
 * string character, a binary value's byteLength, 8 bytes any other value, plus its keys (1 byte
 * an array slot, holes too). It stops as soon as it passes `limit` (and returns what it counted
 * so far), so a value far past the limit costs no more than the limit. It reads what the clone
 * would read (a getter runs, as it would there); a proxy is not entered, and a value that throws
 * while read weighs what was counted before it: the clone that follows reports either
 * (E_NOT_CLONEABLE, with its path). Cycles are counted once.
 */
export function payloadBytes(value: unknown, limit: number): number {
  if (typeof value === 'string') return value.length;
  if (typeof value !== 'object' || value === null) return 8;
  let total = 0;
  try {
    // Objects met once seen (the set only once there is a nested one: most inputs are flat).
    let seen: Set<object> | undefined;
    let topSeen = false;
    const stack: unknown[] = [value];
    // Containers too wide to push at once, walked an item at a time once the stack is empty.
    let wide: Wide[] | undefined;
    while (total <= limit) {
      let each: unknown;
      if (stack.length > 0) each = stack.pop();
      else {
        const rest = wide?.[wide.length - 1];
        if (rest === undefined) break;
        if (rest.i >= rest.n) {
          wide?.pop();
          continue;
        }
        if (rest.keys === undefined) each = (rest.of as unknown[])[rest.i++];
        else {
          const key = rest.keys[rest.i++] as string;
          total += key.length;
          each = (rest.of as Record<string, unknown>)[key];
        }
      }
      if (typeof each === 'string') {
        total += each.length;
        continue;
      }
      if (typeof each !== 'object' || each === null) {
        total += 8;
        continue;
      }
      if (each === value) {
        if (topSeen) continue;
        topSeen = true;
      } else {
        seen ??= new Set<object>();
        if (seen.has(each)) continue;
        seen.add(each);
      }
      // A proxy first: instanceof would run its getPrototypeOf trap.
      if (types.isProxy(each) || each instanceof SharedArrayBuffer) continue;
      if (ArrayBuffer.isView(each) || each instanceof ArrayBuffer) {
        total += each.byteLength;
        continue;
      }
      if (Array.isArray(each)) {
        const n = each.length;
        total += n;
        if (n > WIDE) {
          wide ??= [];
          wide.push({ of: each, keys: undefined, i: 0, n });
        } else if (total <= limit) for (let i = 0; i < n; i++) stack.push(each[i]);
      } else if (each instanceof Map) {
        for (const [k, v] of each) stack.push(k, v);
      } else if (each instanceof Set) {
        for (const v of each) stack.push(v);
      } else {
        const record = each as Record<string, unknown>;
        const keys = Object.keys(record);
        if (keys.length > WIDE) {
          wide ??= [];
          wide.push({ of: record, keys, i: 0, n: keys.length });
        } else
          for (const key of keys) {
            total += key.length;
            stack.push(record[key]);
          }
      }
    }
  } catch {
    // Left to the clone, which says what and where.
  }
  return total;
}

/**
 * Items past which {@link payloadBytes} walks a container an item at a time instead of pushing
 * them all: its memory then follows the value's depth, not its breadth (a sparse array of
 * 2³² − 1 slots weighs 4 GiB at once, and none of its slots is pushed).
 */
const WIDE = 4096;

/** A wide array (no keys) or object, and how far {@link payloadBytes} has walked it. */
interface Wide {
  of: object;
  keys: string[] | undefined;
  i: number;
  n: number;
}
