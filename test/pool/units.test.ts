// Small internals with their own contracts: the FIFO deque, the clone-path finder, the lanes.
import { describe, expect, it } from 'vitest';
import { findUncloneable } from '../../dist/src/pool/clone.js';
import { Lanes } from '../../dist/src/pool/lanes.js';
import { payloadBytes } from '../../dist/src/pool/payload.js';
import { isSkipped } from '../../dist/src/pool/protocol.js';
import { Deque } from '../../dist/src/pool/queue.js';
import { spinningWait } from '../../dist/src/pool/spin.js';

describe('Deque', () => {
  it('is FIFO through growth, with unshift at the front', () => {
    const q = new Deque<number>();
    for (let i = 0; i < 100; i++) q.push(i);
    for (let i = 0; i < 50; i++) expect(q.shift()).toBe(i);
    for (let i = 100; i < 200; i++) q.push(i);
    q.unshift(49);
    expect(q.size).toBe(151);
    expect(q.peek()).toBe(49);
    expect(q.drain()).toEqual(Array.from({ length: 151 }, (_, i) => i + 49));
    expect(q.shift()).toBeUndefined();
  });
});

describe('findUncloneable', () => {
  it('returns undefined for cloneable values', () => {
    expect(
      findUncloneable({ a: [1, new Map([[1, 2]])], b: new Uint8Array(2) }, 'input'),
    ).toBeUndefined();
  });

  it('names the path of a function, a symbol, a WeakMap, inside arrays, objects, maps and sets', () => {
    expect(findUncloneable(() => 1, 'input')).toEqual({ path: 'input', what: 'a function' });
    expect(findUncloneable({ a: { 'b-c': [0, Symbol('s')] } }, 'input')?.path).toBe(
      'input.a["b-c"][1]',
    );
    expect(findUncloneable({ cache: new WeakMap() }, 'output')).toEqual({
      path: 'output.cache',
      what: 'an instance of WeakMap',
    });
    expect(findUncloneable(new Map([['k', () => 1]]), 'x')?.path).toBe('x.get("k")');
    expect(findUncloneable(new Set([1, () => 1]), 'x')?.path).toBe('x.<value 1>');
  });

  it('survives cycles', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    a.fn = () => 1;
    expect(findUncloneable(a, 'v')?.path).toBe('v.fn');
  });
});

describe('spinningWait (an idle thread spins, then sleeps)', () => {
  const recorder = () => {
    const calls: unknown[][] = [];
    const wait = (...args: unknown[]) => {
      calls.push(args);
      return 'timed-out';
    };
    return { calls, wait };
  };
  const counting = () => {
    let reads = 0;
    let t = 0;
    return {
      now: () => {
        reads++;
        t += 0.1;
        return t;
      },
      reads: () => reads,
    };
  };

  it("identifies the first wait's two-slot counter, watches it before sleeping, and leaves other waits alone", () => {
    const { calls, wait } = recorder();
    const clock = counting();
    const spinning = spinningWait(wait, 1, clock.now);
    const counter = new Int32Array(new SharedArrayBuffer(8));
    // The first wait (Piscina's): watched for 1 ms of the fake clock, then a real sleep.
    expect(spinning(counter, 0, 0)).toBe('timed-out');
    expect(clock.reads()).toBeGreaterThan(5);
    expect(calls).toEqual([[counter, 0, 0, undefined]]);
    // The counter moved: no sleep at all.
    Atomics.store(counter, 0, 1);
    expect(spinning(counter, 0, 0)).toBe('not-equal');
    expect(calls).toHaveLength(1);
    // A task's own wait, on another buffer (even of the same shape) or with a timeout: untouched.
    const before = clock.reads();
    const own = new Int32Array(new SharedArrayBuffer(8));
    spinning(own, 0, 0);
    spinning(counter, 0, 1, 5);
    expect(clock.reads()).toBe(before);
    expect(calls.slice(1)).toEqual([
      [own, 0, 0, undefined],
      [counter, 0, 1, 5],
    ]);
  });

  it('calls beforeIdle before each wait on the counter (even with no spin), and for no other wait', () => {
    const { calls, wait } = recorder();
    const clock = counting();
    let idles = 0;
    const spinning = spinningWait(wait, 0, clock.now, () => idles++);
    const counter = new Int32Array(new SharedArrayBuffer(8));
    spinning(counter, 0, 0);
    spinning(counter, 0, 0);
    spinning(new Int32Array(new SharedArrayBuffer(8)), 0, 0);
    spinning(counter, 0, 0, 5);
    expect(idles).toBe(2);
    // No spin: every wait sleeps at once.
    expect(clock.reads()).toBe(0);
    expect(calls).toHaveLength(4);
    // A beforeIdle that ends the thread throws here in a test: nothing sleeps after it.
    const ending = spinningWait(wait, 1, clock.now, () => {
      throw new Error('exited');
    });
    expect(() => ending(counter, 0, 0)).toThrow('exited');
    expect(calls).toHaveLength(4);
  });

  it('watches nothing when the first wait is not a two-slot counter with no timeout', () => {
    const { calls, wait } = recorder();
    const clock = counting();
    const spinning = spinningWait(wait, 1, clock.now);
    const other = new Int32Array(new SharedArrayBuffer(16));
    spinning(other, 0, 0);
    const counter = new Int32Array(new SharedArrayBuffer(8));
    spinning(counter, 0, 0);
    expect(clock.reads()).toBe(0);
    expect(calls).toHaveLength(2);
  });
});

describe('lanes', () => {
  it('a skip bit left on a lane never skips a later hand-off, after the generations wrap', () => {
    const lanes = new Lanes(1);
    const skips = new Int32Array(lanes.skipBuffer);
    const first = lanes.acquire();
    lanes.skip(first.lane, first.gen, 1);
    lanes.release(first.lane);
    // Hand-offs until the same lane comes back with the same generation (2^23 per lane).
    for (;;) {
      const { lane, gen } = lanes.acquire();
      if (lane === first.lane && gen === first.gen) {
        expect(isSkipped(skips, lane, gen, 1)).toBe(false);
        break;
      }
      lanes.release(lane);
    }
  });
});

describe('payloadBytes', () => {
  it('weighs strings, binary data, keys and other values; cycles once; stops past the limit', () => {
    expect(payloadBytes('abc', 100)).toBe(3);
    expect(payloadBytes(42, 100)).toBe(8);
    expect(payloadBytes({ ab: 'xyz', n: 1 }, 100)).toBe(2 + 3 + 1 + 8);
    expect(payloadBytes({ buf: new Uint8Array(1000) }, 1e6)).toBe(3 + 1000);
    expect(payloadBytes([1, 'ab', [2]], 100)).toBe(3 + 8 + 2 + 1 + 8);
    expect(payloadBytes(new Map([['k', 'vv']]), 100)).toBe(3);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(payloadBytes(cyclic, 1e6)).toBe(1 + 8 + 4);
    // Far past the limit: it stops soon after passing it.
    const big = Array.from({ length: 100_000 }, () => 'x'.repeat(100));
    const weight = payloadBytes(big, 1000);
    expect(weight).toBeGreaterThan(1000);
    expect(weight).toBeLessThan(200_000);
  });

  it('a wide value is walked an item at a time: the same weight, and a huge sparse array is not walked (found by fuzzing)', () => {
    const wideArray = Array.from({ length: 10_000 }, (_, i) => (i % 2 === 0 ? 'ab' : [i]));
    // 10 000 slots, 5 000 strings of 2, 5 000 arrays of one slot and one number.
    expect(payloadBytes(wideArray, 1e9)).toBe(10_000 + 5_000 * 2 + 5_000 * (1 + 8));
    const wideObject = Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, 1]));
    const keys = Object.keys(wideObject).reduce((n, k) => n + k.length, 0);
    expect(payloadBytes({ nested: wideObject }, 1e9)).toBe(6 + keys + 5_000 * 8);
    // Before, its 2^32 - 1 slots were pushed on a stack: V8 failed with a fatal error.
    const sparse: unknown[] = [];
    sparse.length = 2 ** 32 - 1;
    expect(payloadBytes({ value: sparse }, 64 * 1024 * 1024)).toBe(5 + 2 ** 32 - 1);
    // Past its limit a wide container is left at once, whatever its size.
    expect(payloadBytes([sparse, sparse], 10)).toBeLessThan(2 ** 33);
  });

  it('never throws: a getter that throws, a proxy, a revoked proxy weigh what was counted', () => {
    const revocable = Proxy.revocable({}, {});
    revocable.revoke();
    const throwing = {
      get x(): number {
        throw new Error('getter');
      },
    };
    for (const value of [throwing, new Proxy({}, {}), revocable.proxy, { p: revocable.proxy }])
      expect(typeof payloadBytes(value, 100)).toBe('number');
  });
});
