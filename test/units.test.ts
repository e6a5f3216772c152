// Small internals with their own contracts: the FIFO deque and the clone-path finder.
import { describe, expect, it } from 'vitest';
import { findUncloneable } from '../dist/pool/clone.js';
import { Deque } from '../dist/pool/queue.js';

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
