// Fuzzing the pool on its own: pool.run(name, input, options), pool.probe and pool.message. One
// pool of two threads serves every case; a task settles with its output or a TroupeError.
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createPool } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';
import { answer, expectTyped, fuzz, PROPERTY_LIMIT_MS, watchStrays } from './harness.js';
import {
  anyArb,
  atom,
  build,
  dataArb,
  KEYS,
  objectArb,
  orAny,
  type Recipe,
  sometimesAny,
  v,
} from './values.js';

watchStrays();

const FILE = 'pool.test.ts';

const strays: unknown[] = [];
const pool = createPool({
  threads: 2,
  modules: {
    behave: fixture('behave'),
    echo: fixture('echo'),
    // A module registered under a prototype key is a module like any other.
    constructor: fixture('echo'),
    broken: fixture('broken-on-load'),
  },
  onStrayError: (error) => strays.push(error),
});
afterAll(() => pool.destroy());

const nameArb = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('behave', 'echo', 'constructor').map(v) },
  { weight: 1, arbitrary: fc.constantFrom('broken', 'nope', ...KEYS).map(v) },
  { weight: 1, arbitrary: anyArb },
);
const inputArb = fc.oneof(
  {
    weight: 4,
    arbitrary: objectArb(
      {
        op: orAny(
          fc.constantFrom('echo', 'echo', 'echo', 'throw', 'reject', 'throwString', 'ctx').map(v),
          8,
        ),
        value: fc.oneof({ weight: 3, arbitrary: dataArb }, { weight: 1, arbitrary: anyArb }),
        message: orAny(fc.constant(v('fuzz'))),
      },
      {
        required: ['op'],
        flavor: fc.constantFrom('plain', 'plain', 'plain', 'nullProto', 'getters'),
      },
    ),
  },
  { weight: 1, arbitrary: dataArb },
  { weight: 1, arbitrary: anyArb },
);
const buffersArb: fc.Arbitrary<Recipe> = fc.record({
  arr: fc.array(
    fc.constantFrom(
      atom('arrayBuffer'),
      atom('arrayBuffer'),
      atom('detachedBuffer'),
      atom('sharedBuffer'),
      atom('uint8'),
    ),
    { maxLength: 2 },
  ),
  as: fc.constantFrom('plain', 'plain', 'plain', 'sparse', 'proxy' as const),
});
const optionsArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant(v(undefined)) },
  {
    weight: 5,
    arbitrary: objectArb(
      {
        signal: orAny(
          fc.constantFrom(atom('abortSignal'), atom('abortedSignal'), atom('abortedHostile')),
        ),
        timeoutMs: orAny(fc.constantFrom(0, 2_000).map(v)),
        transfer: orAny(buffersArb),
        context: orAny(
          objectArb(
            {
              task: objectArb({ id: orAny(fc.constantFrom('a', '__proto__').map(v)) }),
              deps: fc.oneof(dataArb, anyArb),
            },
            { nearMisses: ['tasks', 'dep'] },
          ),
        ),
        onFreed: orAny(
          fc.constantFrom<Recipe>(
            { fn: 'throws', of: v('freed') },
            { fn: 'rejects', of: v('freed') },
          ),
        ),
        origin: anyArb,
        onRunTime: orAny(
          fc.constantFrom<Recipe>(
            { fn: 'returns', of: v(1) },
            { fn: 'throws', of: atom('revoked') },
          ),
        ),
      },
      { nearMisses: ['timeout', 'sigal', 'transfers', 'onRuntime'] },
    ),
  },
  { weight: 1, arbitrary: anyArb },
);

const counts = new Map<string, number>();
const count = (key: string) => counts.set(key, (counts.get(key) ?? 0) + 1);
function report(what: string): void {
  console.info(`${what}: ${[...counts].map(([k, n]) => `${n} ${k}`).join(', ')}`);
  counts.clear();
}

describe('fuzz: a pool', () => {
  it(
    'pool.run(name, input, options): the output or a TroupeError, and the pool goes on',
    async () => {
      await fuzz(
        FILE,
        fc.asyncProperty(nameArb, sometimesAny(inputArb), optionsArb, async (n, i, o) => {
          const name = build(n);
          const input = build(i);
          const options = build(o);
          const got = await answer('pool.run', () =>
            pool.run(name as never, input, options as never),
          );
          count(got.ok ? 'resolved' : got.error.code);
        }),
      );
      report('pool.run');
      // The pool still works, and no task is left behind.
      expect(await pool.run('echo', 'after')).toBe('after');
      await pool.idle();
      expect(pool.stats()).toMatchObject({ queued: 0, running: 0 });
      for (const error of strays.splice(0)) expectTyped('a stray error', error);
    },
    PROPERTY_LIMIT_MS,
  );

  // One property per method, so that each gets CASES cases of its own.
  for (const method of ['probe', 'message'] as const)
    it(
      `pool.${method}: an answer or a TroupeError`,
      async () => {
        const probeOptionsArb = fc.oneof(
          fc.constant(v(undefined)),
          objectArb(
            {
              signal: orAny(fc.constantFrom(atom('abortSignal'), atom('abortedSignal'))),
              timeoutMs: orAny(fc.constantFrom(0, 2_000).map(v)),
              requires: orAny(
                fc.record({
                  arr: fc.array(
                    fc.constantFrom('probe', 'onMessage', '__proto__', 'constructor').map(v),
                    { maxLength: 2 },
                  ),
                  as: fc.constant('plain' as const),
                }),
              ),
            },
            { nearMisses: ['require', 'timeout'] },
          ),
          anyArb,
        );
        await fuzz(
          FILE,
          fc.asyncProperty(
            nameArb,
            fc.oneof(dataArb, anyArb),
            orAny(fc.constantFrom('main', '__proto__').map(v)),
            probeOptionsArb,
            async (n, m, f, o) => {
              const name = build(n);
              const msg = build(m);
              const from = build(f);
              const options = build(o);
              const got = await answer(method, () =>
                method === 'probe'
                  ? pool.probe(name as never, options as never)
                  : pool.message(name as never, msg, from as never, options as never),
              );
              count(got.ok ? `${method} resolved` : `${method} ${got.error.code}`);
            },
          ),
        );
        report(`pool.${method}`);
        expect(await pool.run('echo', 'after')).toBe('after');
      },
      PROPERTY_LIMIT_MS,
    );
});
