// What troupe shows of a value to an inspector (src/inspect/summary.ts): JSON that parses back
// the same, bounded, made without running user code.
import { describe, expect, it } from 'vitest';
import { TroupeError } from '../../dist/src/index.js';
import { SUMMARY_LIMITS, summarize } from '../../dist/src/inspect/summary.js';

const roundTrips = (value: unknown) => {
  const summary = summarize(value);
  expect(JSON.parse(JSON.stringify(summary))).toEqual(summary);
  return summary;
};

describe('summarize', () => {
  it('keeps plain data as it is', () => {
    expect(roundTrips({ a: 1, b: 'x', c: [true, null], d: { e: 2 } })).toEqual({
      a: 1,
      b: 'x',
      c: [true, null],
      d: { e: 2 },
    });
  });

  it('writes what JSON cannot hold as strings: NaN, infinities, bigints', () => {
    expect(roundTrips({ n: Number.NaN, p: Infinity, m: -Infinity, b: 10n ** 30n })).toEqual({
      n: 'NaN',
      p: 'Infinity',
      m: '-Infinity',
      b: '1000000000000000000000000000000n',
    });
  });

  it('calls no getter and opens no proxy', () => {
    let called = 0;
    const getter = {
      get x() {
        called++;
        return 1;
      },
    };
    const trap = new Proxy(
      {},
      {
        get() {
          called++;
          throw new Error('trap');
        },
        ownKeys() {
          called++;
          throw new Error('trap');
        },
      },
    );
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(roundTrips({ getter, trap, proxy })).toEqual({
      getter: { x: '(a getter)' },
      trap: 'a proxy',
      proxy: 'a proxy',
    });
    expect(called).toBe(0);
  });

  it('keeps __proto__ as an own key, and pollutes nothing', () => {
    const value = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const summary = roundTrips(value) as Record<string, unknown>;
    expect(Object.hasOwn(summary, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('bounds depth, items, keys and characters, and names cycles', () => {
    const deep = { a: { b: { c: { d: { e: { f: 1 } } } } } };
    expect(JSON.stringify(roundTrips(deep))).toContain('an object');
    const long = roundTrips(Array.from({ length: 1000 }, (_, i) => i)) as unknown[];
    expect(long).toHaveLength(SUMMARY_LIMITS.items + 1);
    expect(long.at(-1)).toBe(`… ${1000 - SUMMARY_LIMITS.items} more`);
    const wide = roundTrips(
      Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, i])),
    );
    expect(Object.keys(wide as object)).toHaveLength(SUMMARY_LIMITS.items + 1);
    const text = roundTrips('x'.repeat(10_000)) as string;
    expect(text.length).toBeLessThan(300);
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    expect(roundTrips(cycle)).toEqual({ name: 'loop', self: '(a cycle)' });
    // A sparse array of 2³²−1 slots is counted, not walked.
    expect((roundTrips(new Array(2 ** 32 - 1)) as unknown[]).length).toBe(SUMMARY_LIMITS.items + 1);
  });

  it('describes errors, functions, symbols, maps, sets, binary data and dates', () => {
    const summary = roundTrips({
      troupe: new TroupeError('E_TIMEOUT', 'too slow'),
      plain: new RangeError('out'),
      fn: function named() {},
      sym: Symbol('s'),
      map: new Map([[1, 2]]),
      set: new Set([1, 2, 3]),
      bytes: new Uint8Array(8),
      date: new Date(0),
      bad: new Date(Number.NaN),
    });
    expect(summary).toEqual({
      troupe: { name: 'TroupeError', code: 'E_TIMEOUT', message: 'too slow' },
      plain: { name: 'RangeError', message: 'out' },
      fn: 'a function (named)',
      sym: 'a symbol (s)',
      map: { type: 'Map', size: 1 },
      set: { type: 'Set', size: 3 },
      bytes: 'an instance of Uint8Array',
      date: '1970-01-01T00:00:00.000Z',
      bad: 'an invalid Date',
    });
  });
});
