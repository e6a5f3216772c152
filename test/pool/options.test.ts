// Every invalid option gives E_INVALID_OPTION with a message naming the field, the expectation
// and what was given (one case per message).
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, type PoolOptions } from '../../dist/src/index.js';
import { blocker, closeAll, fixture, testPool } from '../helpers.js';

afterEach(closeAll);

const modules = { echo: fixture('echo') };

const invalid: [string, unknown, string][] = [
  ['options itself', null, 'options: expected an object, got null'],
  [
    'threads',
    { modules, threads: 0 },
    'options.threads: expected an integer from 1 to 1024, got number 0',
  ],
  [
    'threads',
    { modules, threads: 1.5 },
    'options.threads: expected an integer from 1 to 1024, got number 1.5',
  ],
  [
    'timeoutMs',
    { modules, timeoutMs: -1 },
    'options.timeoutMs: expected a duration in ms from 0 to 2147483647, got number -1',
  ],
  [
    'moduleLoadTimeoutMs',
    { modules, moduleLoadTimeoutMs: 0 },
    'options.moduleLoadTimeoutMs: expected a duration above 0 ms, got number 0',
  ],
  [
    'closeTimeoutMs',
    { modules, closeTimeoutMs: 'soon' },
    'options.closeTimeoutMs: expected a duration in ms from 0 to 2147483647, got "soon"',
  ],
  [
    'sweepIntervalMs',
    { modules, sweepIntervalMs: Number.NaN },
    'options.sweepIntervalMs: expected a duration in ms from 0 to 2147483647, got number NaN',
  ],
  [
    'maxQueue',
    { modules, maxQueue: 0 },
    'options.maxQueue: expected a positive integer or Infinity, got number 0',
  ],
  [
    'resourceLimits',
    { modules, resourceLimits: 5 },
    'options.resourceLimits: expected an object (worker_threads ResourceLimits), got number 5',
  ],
  // Sizes past which Node 20 fails the host instead of refusing them (found by fuzzing).
  [
    'resourceLimits.maxOldGenerationSizeMb',
    { modules, resourceLimits: { maxOldGenerationSizeMb: 4 } },
    'options.resourceLimits.maxOldGenerationSizeMb: expected a size in MB of 16 or more, got number 4',
  ],
  [
    'resourceLimits.codeRangeSizeMb',
    { modules, resourceLimits: { codeRangeSizeMb: 2 ** 31 } },
    'options.resourceLimits.codeRangeSizeMb: expected a size in MB above 0, at most 1024, got number 2147483648',
  ],
  [
    'resourceLimits.stackSizeMb',
    { modules, resourceLimits: { stackSizeMb: 0.1 } },
    'options.resourceLimits.stackSizeMb: expected a size in MB from 1 to 1024, got number 0.1',
  ],
  [
    'resourceLimits.maxYoungGenerationSizeMb',
    { modules, resourceLimits: { maxYoungGenerationSizeMb: -0 } },
    'options.resourceLimits.maxYoungGenerationSizeMb: expected a size in MB above 0, got number 0',
  ],
  [
    'onStrayError',
    { modules, onStrayError: 'log' },
    'options.onStrayError: expected a function, got "log"',
  ],
  [
    'modules',
    { modules: [] },
    'options.modules: expected an object mapping names to module URLs, got an array of length 0',
  ],
  [
    'modules',
    {},
    'options.modules: expected an object mapping names to module URLs, got undefined',
  ],
  [
    'a module path',
    { modules: { a: 'relative/path.mjs' } },
    'options.modules.a: expected a file: URL or an absolute path, got "relative/path.mjs"',
  ],
  [
    'a module URL',
    { modules: { a: new URL('https://example.com/x.mjs') } },
    'options.modules.a: expected a file: URL, got "https://example.com/x.mjs"',
  ],
  [
    'a module batch',
    { modules: { a: { url: fixture('echo'), batch: 0 } } },
    "options.modules.a.batch: expected 'auto' or an integer from 1 to 252, got number 0",
  ],
  [
    'a module timeout',
    { modules: { a: { url: fixture('echo'), timeoutMs: -5 } } },
    'options.modules.a.timeoutMs: expected a duration in ms from 0 to 2147483647, got number -5',
  ],
  [
    'idle spin',
    { idleSpinMs: 11, modules: {} },
    'options.idleSpinMs: expected a duration in ms from 0 to 10, got number 11',
  ],
  [
    'idle spin type',
    { idleSpinMs: '1', modules: {} },
    'options.idleSpinMs: expected a duration in ms from 0 to 10, got "1"',
  ],
  [
    'a module entry',
    { modules: { a: 42 } },
    'options.modules.a: expected a URL, a path or { url, batch?, timeoutMs? }, got number 42',
  ],
];

describe('createPool options', () => {
  for (const [field, options, message] of invalid) {
    it(`rejects a bad ${field}: ${message}`, () => {
      expect(() => createPool(options as PoolOptions)).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION', message }),
      );
    });
  }

  it('defaults threads to the number of cores, and undefined fields keep their defaults', async () => {
    const pool = testPool({
      threads: undefined as unknown as number,
      timeoutMs: undefined as unknown as number,
    });
    const { availableParallelism } = await import('node:os');
    expect(pool.threads).toBe(availableParallelism());
  });
});

describe('idle threads', () => {
  it('run tasks whether they spin before they sleep or sleep at once', async () => {
    for (const idleSpinMs of [0, 0.3, 10]) {
      const pool = testPool({ threads: 2, idleSpinMs });
      // One at a time (each thread idles between tasks), then a burst.
      for (let i = 0; i < 5; i++)
        expect(await pool.run('behave', { op: 'echo', value: i })).toBe(i);
      const burst = await Promise.all(
        Array.from({ length: 50 }, (_, i) => pool.run('behave', { op: 'echo', value: i })),
      );
      expect(burst).toEqual(Array.from({ length: 50 }, (_, i) => i));
    }
  });
});

describe('run options', () => {
  const bad: [string, unknown, string][] = [
    [
      'timeoutMs',
      { timeoutMs: -1 },
      'run(options).timeoutMs: expected a duration in ms from 0 to 2147483647, got number -1',
    ],
    [
      'signal',
      { signal: { aborted: false } },
      'run(options).signal: expected an AbortSignal, got an object',
    ],
    [
      'transfer',
      { transfer: ['x'] },
      'run(options).transfer: expected an array of ArrayBuffers, got an array of length 1',
    ],
    [
      'context',
      { context: 3 },
      'run(options).context: expected an object { task?, deps? }, got number 3',
    ],
  ];
  for (const [field, options, message] of bad) {
    it(`rejects a bad ${field}`, async () => {
      const pool = testPool();
      await expect(pool.run('echo', 1, options as object)).rejects.toMatchObject({
        code: 'E_INVALID_OPTION',
        message,
      });
    });
  }

  it('E_QUEUE_FULL past maxQueue, naming the limit; queued work is not lost', async () => {
    const pool = testPool({ threads: 1, maxQueue: 2 });
    const gate = blocker();
    const admitted: Promise<unknown>[] = [pool.run('behave', gate.input('held'))];
    await gate.started();
    // Hand-off is synchronous: what the thread cannot take yet shows in stats().queued at once.
    while (pool.stats().queued < 2) admitted.push(pool.run('echo', admitted.length));
    await expect(pool.run('echo', 99)).rejects.toMatchObject({
      code: 'E_QUEUE_FULL',
      details: { maxQueue: 2 },
    });
    gate.release();
    expect(await Promise.all(admitted)).toEqual([
      'held',
      ...admitted.slice(1).map((_, i) => i + 1),
    ]);
  });

  it('context reaches the handler as ctx.task and ctx.deps', async () => {
    const pool = testPool();
    const context = { task: { id: 'hash-1', attempt: 1 }, deps: { read: 'text' } };
    expect(await pool.run('behave', { op: 'ctx' }, { context })).toEqual(context);
    expect(await pool.run('behave', { op: 'ctx' })).toEqual({ deps: {} });
    // Odd shapes travel as they are.
    const odd = { task: null as never };
    expect(await pool.run('behave', { op: 'ctx' }, { context: odd })).toEqual({
      task: null,
      deps: {},
    });
  });

  it('transfer moves an ArrayBuffer instead of copying it', async () => {
    const pool = testPool();
    const buffer = new Uint8Array([1, 2, 3]).buffer;
    const echoed = await pool.run<ArrayBuffer>('echo', buffer, { transfer: [buffer] });
    expect(buffer.byteLength).toBe(0);
    expect([...new Uint8Array(echoed)]).toEqual([1, 2, 3]);
  });
});
