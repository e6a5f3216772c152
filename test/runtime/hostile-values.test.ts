// Whatever user code passes, throws or returns — null-prototype objects, proxies whose traps
// throw, revoked proxies, getters that throw, errors whose message cannot be read, values nested
// 10 000 deep — ends as a TroupeError with a stable code whose message says what it was: never a
// crash, a hang, an untyped throw or a lost subtask.
import { afterEach, describe, expect, it } from 'vitest';
import { createPool, createTroupe, defineExpert, isTroupeError } from '../../dist/src/index.js';
import { closeAll, fixture, settle, testPool, until } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(async () => {
  await closeTroupes();
  await closeAll();
});

const nullObject = () => Object.create(null) as object;
const unreadableMessage = () => {
  const error = new Error('x');
  Object.defineProperty(error, 'message', {
    get() {
      throw new Error('no message for you');
    },
  });
  return error;
};
const revoked = () => {
  const { proxy, revoke } = Proxy.revocable({}, {});
  revoke();
  return proxy;
};
const throwing = () =>
  new Proxy(
    {},
    {
      get() {
        throw new Error('get trap');
      },
      ownKeys() {
        throw new Error('ownKeys trap');
      },
      getPrototypeOf() {
        throw new Error('getPrototypeOf trap');
      },
      has() {
        throw new Error('has trap');
      },
    },
  );
const deep = (levels: number) => {
  const root: Record<string, unknown> = {};
  let node = root;
  for (let i = 0; i < levels; i++) {
    const next: Record<string, unknown> = {};
    node.n = next;
    node = next;
  }
  return root;
};

const module = fixture('behave');
const team = (extra: Record<string, unknown> = {}, expert: Record<string, unknown> = {}) =>
  openTroupe({
    threads: 2,
    attempts: 3,
    retryBackoffMs: 1,
    experts: [
      defineExpert({ name: 'w', skills: { s: 1 }, module, concurrency: 2, ...expert }),
      defineExpert({ name: 'inbox', skills: { m: 1 }, module, onMessage: () => 'fine' }),
    ],
    ...extra,
  });
const one = (input: unknown) => ({ analyze: () => [{ id: 'a', needs: 's', input }] });

/** What a promise rejected with (undefined if it resolved). */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  const result = await settle(promise);
  return result.ok ? undefined : result.error;
}

/** Expects a TroupeError of `code` whose message matches `message`. */
function typed(error: unknown, code: string, message: RegExp): void {
  expect(isTroupeError(error), `not a TroupeError: ${String(error)}`).toBe(true);
  expect((error as { code: string }).code).toBe(code);
  expect((error as Error).message).toMatch(message);
}

describe('what an inline onMessage throws or rejects with', () => {
  const cases: [string, () => unknown, RegExp][] = [
    ['an object with no prototype', nullObject, /an object with no prototype \(not an Error\)/],
    ['an error whose message getter throws', unreadableMessage, /whose message cannot be read/],
    ['a revoked proxy', revoked, /a proxy \(not an Error\)/],
  ];
  for (const [what, make, message] of cases) {
    it(`${what}: ask rejects E_TASK_FAILED, tell reports it, the process lives`, async () => {
      const failures: unknown[] = [];
      const inbox = (onMessage: () => unknown) =>
        openTroupe({
          threads: 1,
          experts: [defineExpert({ name: 'inbox', skills: { m: 1 }, module, onMessage })],
          onMessageFailed: (failure) => failures.push(failure.error),
        });
      const throwsIt = inbox(() => {
        throw make();
      });
      const rejectsIt = inbox(() => Promise.reject(make()));
      await throwsIt.probed();
      await rejectsIt.probed();
      typed(await failure(throwsIt.ask('inbox', 1)), 'E_TASK_FAILED', message);
      typed(await failure(rejectsIt.ask('inbox', 1)), 'E_TASK_FAILED', message);
      expect(() => throwsIt.tell('inbox', 1)).not.toThrow();
      expect(failures).toHaveLength(1);
      typed(failures[0], 'E_TASK_FAILED', /inbox\.onMessage threw/);
    });
  }

  it('a ctx.ask from a worker to such a handler rejects in the handler with the same error', async () => {
    const t = openTroupe({
      threads: 2,
      experts: [
        defineExpert({ name: 'asker', skills: { a: 1 }, module: fixture('talker') }),
        defineExpert({
          name: 'inbox',
          skills: { m: 1 },
          module,
          onMessage: () => {
            throw nullObject();
          },
        }),
      ],
    });
    const outcome = await t.run(
      {
        analyze: () => [{ id: 'q', needs: 'a', input: { op: 'ask', to: 'inbox', msg: 1 } }],
      },
      null,
    );
    expect(outcome.status).toBe('failed');
    if (outcome.status === 'failed') expect(outcome.error.message).toMatch(/no prototype/);
  });
});

describe("what an expert's validate throws or returns", () => {
  const cases: [string, (output: unknown) => unknown, RegExp][] = [
    [
      'throws an object with no prototype',
      () => {
        throw nullObject();
      },
      /validate threw: an object with no prototype/,
    ],
    [
      'returns an object whose constructor getter throws',
      () => ({
        get constructor() {
          throw new Error('constructor getter');
        },
      }),
      /validate returned an object, not true, false or a reason string/,
    ],
    [
      'throws an error whose message getter throws',
      () => {
        throw unreadableMessage();
      },
      /validate threw: an Error whose message cannot be read/,
    ],
    ['returns a revoked proxy', () => revoked(), /validate returned a proxy/],
  ];
  for (const [what, validate, message] of cases) {
    it(`${what}: the subtask fails E_QUALITY, the run ends, the expert is free`, async () => {
      const t = team({}, { validate });
      const outcome = await t.run(one({ op: 'echo', value: 1 }), null);
      expect(outcome.status).toBe('failed');
      if (outcome.status === 'failed') typed(outcome.error, 'E_QUALITY', message);
      expect(t.stats().subtasks).toEqual({ queued: 0, running: 0, outstanding: 0 });
      expect(t.experts()[0]?.state).toBe('ready');
      // The next run goes through.
      const t2 = await t.run({ analyze: () => [] }, null);
      expect(t2.status).toBe('done');
    });
  }
});

describe('subtask inputs that cannot cross to a thread', () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'a proxy whose traps throw',
      throwing,
      /input cannot be sent to a worker thread: it is a proxy/,
    ],
    ['a revoked proxy', revoked, /input cannot be sent to a worker thread: it is a proxy/],
    [
      'an object with a getter that throws',
      () => ({
        op: 'echo',
        get value() {
          throw new Error('getter boom');
        },
      }),
      /input\.value cannot be sent to a worker thread: it is a getter that throws \(getter boom\)/,
    ],
    [
      'a value nested 10 000 levels deep',
      () => ({ op: 'echo', value: deep(10_000) }),
      /levels deep \(too deep to clone\)/,
    ],
    [
      'a cycle that holds a function',
      () => {
        const value: Record<string, unknown> = { x: {} };
        (value.x as Record<string, unknown>).back = value;
        value.f = () => 1;
        return { op: 'echo', value };
      },
      /input\.value\.f cannot be sent to a worker thread: it is a function/,
    ],
  ];
  for (const [what, input, message] of cases) {
    it(`${what}: E_NOT_CLONEABLE at once, not retried, not charged to the expert`, async () => {
      const t = team();
      const outcome = await t.run(one(input()), null);
      expect(outcome.status).toBe('failed');
      if (outcome.status !== 'failed') return;
      typed(outcome.error, 'E_NOT_CLONEABLE', message);
      expect(outcome.records[0]).toMatchObject({ status: 'failed', attempts: 1 });
      expect(t.experts()[0]?.faults).toEqual([]);
      expect(t.stats().subtasks).toEqual({ queued: 0, running: 0, outstanding: 0 });
    });
  }
});

describe('outputs that cannot cross back', () => {
  it('a getter that throws, a proxy, a value nested too deep: E_NOT_CLONEABLE, and the next task runs', async () => {
    const pool = createPool({ threads: 1, modules: { h: fixture('hostile') } });
    try {
      typed(
        await failure(pool.run('h', 'getter')),
        'E_NOT_CLONEABLE',
        /output\.x \(a getter that throws/,
      );
      typed(await failure(pool.run('h', 'proxy')), 'E_NOT_CLONEABLE', /output \(a proxy\)/);
      typed(
        await failure(pool.run('h', 'deep')),
        'E_NOT_CLONEABLE',
        /cannot be received from the worker thread/,
      );
      expect(await pool.run('h', 'fine')).toBe('fine');
    } finally {
      await pool.destroy();
    }
  });

  it('an answer too deep to decode, read at once behind the one before it, fails its own task', async () => {
    // Piscina reads an answer that has come behind another synchronously (receiveMessageOnPort),
    // where a failed decode throws instead of raising 'messageerror'.
    const pool = createPool({ threads: 1, modules: { h: { url: fixture('hostile'), batch: 1 } } });
    try {
      // Measured, so that the next task waits in the thread's port behind the one it runs.
      for (let i = 0; i < 3; i++) await pool.run('h', 'fine');
      const flag = new Int32Array(new SharedArrayBuffer(4));
      const first = pool.run('h', 'fine');
      const deep = failure(pool.run('h', { deepAfter: flag.buffer }));
      // The main thread holds still until the deep answer is (about to be) posted, then a bit
      // more, so that both answers wait in the port when it reads the first.
      Atomics.wait(flag, 0, 0, 10_000);
      const end = performance.now() + 50;
      while (performance.now() < end);
      expect(await first).toBe('fine');
      typed(await deep, 'E_NOT_CLONEABLE', /cannot be received from the worker thread/);
      expect(await pool.run('h', 'fine')).toBe('fine');
      expect(pool.stats().running).toBe(0);
    } finally {
      await pool.destroy();
    }
  });
});

describe('what analyze and integrate throw or return', () => {
  const thrown: [string, () => unknown, RegExp][] = [
    ['an object with no prototype', nullObject, /an object with no prototype \(not an Error\)/],
    [
      'an object whose toString throws',
      () => ({
        toString() {
          throw new Error('toString');
        },
      }),
      /an object \(not an Error\)/,
    ],
    ['a revoked proxy', revoked, /a proxy \(not an Error\)/],
  ];
  for (const [what, make, message] of thrown) {
    it(`throwing ${what} fails the run E_TASK_FAILED`, async () => {
      const t = team();
      const analyzed = await t.run(
        {
          analyze: () => {
            throw make();
          },
        },
        null,
      );
      expect(analyzed).toMatchObject({ status: 'failed', stage: 'analyzing' });
      if (analyzed.status === 'failed') typed(analyzed.error, 'E_TASK_FAILED', message);
      const integrated = await t.run(
        {
          ...one({ op: 'echo', value: 1 }),
          integrate: () => {
            throw make();
          },
        },
        null,
      );
      expect(integrated).toMatchObject({ status: 'failed', stage: 'integrating' });
      if (integrated.status === 'failed') typed(integrated.error, 'E_TASK_FAILED', message);
    });
  }

  it('a sparse array, a hole in after, a proxy of subtasks: E_INVALID_GRAPH naming the place', async () => {
    const t = team();
    const expectGraph = async (subtasks: unknown, message: RegExp) => {
      const outcome = await t.run({ analyze: () => subtasks as never }, null);
      expect(outcome.status).toBe('failed');
      if (outcome.status === 'failed') typed(outcome.error, 'E_INVALID_GRAPH', message);
    };
    // biome-ignore lint/suspicious/noSparseArray: the point of the test
    await expectGraph([, { id: 'a', needs: 's' }], /subtasks\[0\]: .*a hole in the array/);
    // biome-ignore lint/suspicious/noSparseArray: the point of the test
    await expectGraph([{ id: 'a', needs: 's', after: [, 'b'] }], /subtasks\[0\]\.after\[0\]/);
    await expectGraph(throwing(), /analyze\(\): expected an array of subtasks/);
    await expectGraph(revoked(), /cannot be read/);
    await expectGraph([throwing()], /subtasks\[0\]: expected an object/);
    await expectGraph(
      [
        {
          id: 'a',
          get needs() {
            throw new Error('needs getter');
          },
        },
      ],
      /subtasks\[0\]\.needs: its value cannot be read \(needs getter\)/,
    );
  });
});

describe('hostile values at the public entries', () => {
  const entries: [string, () => unknown][] = [
    ['createTroupe(revoked)', () => createTroupe(revoked() as never)],
    ['createTroupe(throwing proxy)', () => createTroupe(throwing() as never)],
    ['defineExpert(revoked)', () => defineExpert(revoked() as never)],
    [
      'defineExpert with a constructor getter that throws',
      () =>
        defineExpert({
          name: 'x',
          skills: { s: 1 },
          module,
          get constructor(): never {
            throw new Error('ctor');
          },
        } as never),
    ],
    [
      'defineExpert with skills that throw',
      () => defineExpert({ name: 'x', skills: throwing() as never, module }),
    ],
    ['createPool(revoked)', () => createPool(revoked() as never)],
    [
      'createPool with a throwing getter',
      () =>
        createPool({
          get modules(): never {
            throw new Error('modules getter');
          },
        }),
    ],
  ];
  for (const [what, call] of entries) {
    it(`${what} throws E_INVALID_OPTION`, () => {
      let error: unknown;
      try {
        call();
      } catch (thrown) {
        error = thrown;
      }
      expect(isTroupeError(error, 'E_INVALID_OPTION'), String(error)).toBe(true);
    });
  }

  it('run, ask, tell, revive and close answer hostile arguments with E_INVALID_OPTION', async () => {
    const t = team();
    for (const value of [revoked(), throwing()]) {
      typed(await failure(t.run(value as never, null)), 'E_INVALID_OPTION', /^plan: /);
      typed(
        await failure(t.run(one(1), null, value as never)),
        'E_INVALID_OPTION',
        /^run\(options\)/,
      );
      typed(await failure(t.ask(value as never, 1)), 'E_INVALID_OPTION', /^ask\(to\)/);
      typed(
        await failure(t.ask('inbox', 1, value as never)),
        'E_INVALID_OPTION',
        /^ask\(options\)/,
      );
      expect(() => t.tell(value as never, 1)).toThrow(/^tell\(to\)/);
      expect(() => t.revive(value as never)).toThrow(/^revive\(name\)/);
      typed(await failure(t.close(value as never)), 'E_INVALID_OPTION', /^close\(options\)/);
    }
  });

  it('an outcome with a hostile cause still turns into JSON', async () => {
    const t = team();
    const outcome = await t.run(
      {
        analyze: () => {
          throw revoked();
        },
      },
      null,
    );
    expect(outcome.status).toBe('failed');
    if (outcome.status === 'failed')
      expect(JSON.parse(JSON.stringify(outcome.error))).toMatchObject({
        code: 'E_TASK_FAILED',
        cause: 'a proxy',
      });
  });

  it('clock and random are checked', () => {
    const experts = [defineExpert({ name: 'x', skills: { s: 1 }, module })];
    expect(() => createTroupe({ experts, clock: {} as never })).toThrow(
      'options.clock.now: expected a function, got undefined',
    );
    expect(() =>
      createTroupe({
        experts,
        clock: { now: () => 'soon', setTimeout, clearTimeout } as never,
      }),
    ).toThrow('options.clock.now(): expected to return a finite number of ms, got "soon"');
    expect(() => createTroupe({ experts, random: 'dice' as never })).toThrow(
      'options.random: expected a function () => number in [0, 1), got "dice"',
    );
  });

  it('a random that returns garbage fails the run that draws it, naming the option', async () => {
    const t = team({ random: () => 7 });
    const outcome = await t.run(one({ op: 'failUntil', okAt: 2 }), null);
    expect(outcome.status).toBe('failed');
    if (outcome.status === 'failed')
      expect(outcome.error.message).toMatch(
        /options\.random\(\): expected to return a number in \[0, 1\), got number 7/,
      );
  });

  it('a pool task with a hostile options object or context is refused, not thrown', async () => {
    const pool = testPool();
    for (const value of [revoked(), throwing()]) {
      typed(
        await failure(pool.run('behave', { op: 'echo' }, value as never)),
        'E_INVALID_OPTION',
        /^run\(options\)/,
      );
      typed(
        await failure(pool.run('behave', { op: 'echo' }, { context: value as never })),
        'E_INVALID_OPTION',
        /^run\(options\)\.context/,
      );
    }
  });
});

describe('values the fuzz tests found', () => {
  const sparseHuge = () => {
    const array: unknown[] = [];
    array.length = 2 ** 32 - 1;
    return array;
  };

  it('a sparse array of length 2³² − 1 is refused at its first hole, not read through', async () => {
    const started = Date.now();
    expect(() => createTroupe({ experts: sparseHuge() as never })).toThrow(
      /^options\.experts\[0\]: expected an expert definition/,
    );
    const t = team();
    for (const subtasks of [sparseHuge(), [{ id: 'a', needs: 's', after: sparseHuge() }]]) {
      const outcome = await t.run({ analyze: () => subtasks as never }, null);
      expect(outcome.status).toBe('failed');
      if (outcome.status === 'failed')
        typed(outcome.error, 'E_INVALID_GRAPH', /a hole in the array/);
    }
    const pool = testPool();
    typed(
      await failure(pool.run('behave', { op: 'echo' }, { transfer: sparseHuge() as never })),
      'E_INVALID_OPTION',
      /^run\(options\)\.transfer/,
    );
    // An input that cannot be cloned is searched for its culprit: past the holes, not through.
    typed(
      await failure(pool.run('behave', { op: 'echo', value: { list: sparseHuge(), f: () => 1 } })),
      'E_NOT_CLONEABLE',
      /input\.value\.f cannot be sent to a worker thread: it is a function/,
    );
    for (const requires of [sparseHuge(), revoked(), throwing(), ['probe', 1]]) {
      typed(
        await failure(pool.probe('behave', { requires: requires as never })),
        'E_INVALID_OPTION',
        /^probe\(options\)\.requires: expected an array of export names/,
      );
    }
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('an object with a revoked proxy up its prototype chain is no URL, signal or module', async () => {
    const proxied = () => Object.create(revoked()) as never;
    expect(() => createPool({ threads: 1, modules: { m: proxied() } })).toThrow(
      /^options\.modules\.m\.url: its value cannot be read/,
    );
    expect(() => defineExpert({ name: 'x', skills: { s: 1 }, module: proxied() })).toThrow(
      /^expert "x"\.module: expected a file: URL/,
    );
    const t = team();
    typed(
      await failure(t.run(one(1), null, { signal: proxied() })),
      'E_INVALID_OPTION',
      /^run\(options\)\.signal: expected an AbortSignal/,
    );
  });

  it('observers that return a rejected promise are ignored as those that throw are', async () => {
    const unhandled: unknown[] = [];
    const record = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', record);
    try {
      const rejects = async () => {
        throw new Error('an async observer failed');
      };
      const t = openTroupe({
        threads: 1,
        experts: [
          defineExpert({ name: 'talker', skills: { t: 1 }, module: fixture('talker') }),
          defineExpert({
            name: 'heavy',
            skills: { h: 1 },
            module: fixture('talker'),
            messages: 'heavy',
          }),
        ],
        inspect: rejects,
        onMessageFailed: rejects,
      });
      const outcome = await t.run(
        {
          analyze: () => [
            { id: 'p', needs: 't', input: { op: 'progress', steps: [0.5, 1] } },
            {
              id: 's',
              needs: 't',
              input: { op: 'send', to: 'heavy', count: 1, msg: { op: 'throw' } },
            },
          ],
        },
        null,
        { onEvent: rejects, onProgress: rejects },
      );
      expect(outcome.status).toBe('done');
      const pool = testPool({ onStrayError: rejects });
      expect(
        await pool.run(
          'behave',
          { op: 'throwLater', ms: 1 },
          { onRunTime: rejects, onFreed: rejects },
        ),
      ).toBe('returned');
      // A task refused at the door frees at once: its onFreed too may throw or reject.
      const thrower = () => {
        throw new Error('onFreed threw');
      };
      for (const onFreed of [rejects, thrower])
        typed(
          await failure(pool.run('nope', 1, { onFreed })),
          'E_INVALID_OPTION',
          /^module: expected one of the registered modules/,
        );
      // The next task yields to the event loop, so the leftover timer fires while it runs.
      await pool.run('behave', { op: 'sleep', ms: 30 });
      await until(() => pool.stats().strayErrors === 1);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', record);
    }
  });
});
