// Fuzzing the synchronous front doors: createTroupe, defineExpert, createPool and the error
// helpers. Every case answers with a value or a TroupeError of a known code; what is created
// is closed at once.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createPool,
  createTroupe,
  defineExpert,
  describe as describeValue,
  deserializeError,
  ERROR_CODES,
  isTroupeError,
  serializeError,
} from '../../dist/src/index.js';
import { answer, fuzz, PROPERTY_LIMIT_MS, watchStrays } from './harness.js';
import {
  anyArb,
  atom,
  build,
  keyArb,
  numberArb,
  objectArb,
  orAny,
  type Recipe,
  sometimesAny,
  stringArb,
  v,
} from './values.js';

watchStrays();

const FILE = 'options.test.ts';

const num = (...valid: number[]) =>
  orAny(valid.length === 0 ? numberArb.map(v) : fc.constantFrom(...valid).map(v));
const bool = orAny(fc.boolean().map(v));
const fnArb: fc.Arbitrary<Recipe> = orAny(
  fc
    .record({
      fn: fc.constantFrom<'returns' | 'throws'>('returns', 'throws'),
      of: fc.constantFrom<Recipe>(v(true), v(false), v('reason'), v(0), atom('revoked')),
    })
    .map((r) => r as Recipe),
);
const level = orAny(fc.constantFrom(1, 2, 3, 4, 5).map(v));
const skillsArb: fc.Arbitrary<Recipe> = orAny(
  fc.record({
    obj: fc.array(fc.tuple(fc.oneof(fc.constantFrom('s', 't'), keyArb), level), { maxLength: 3 }),
    as: fc.constantFrom('plain', 'plain', 'nullProto', 'assigned', 'getters', 'proxy' as const),
  }),
);
const moduleArb: fc.Arbitrary<Recipe> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(atom('echoUrl'), atom('echoPath'), atom('echoHref')) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(atom('missingUrl'), atom('httpUrl'), atom('brokenUrl')),
  },
  { weight: 1, arbitrary: stringArb.map(v) },
  { weight: 1, arbitrary: anyArb },
);
const nameArb = orAny(
  fc
    .constantFrom(
      'w',
      'e1',
      'a.b-c',
      'toString',
      'constructor',
      'hasOwnProperty',
      'coordinator',
      'run-1',
      '__proto__',
      '1x',
      '',
    )
    .map(v),
);

const expertArb = objectArb(
  {
    name: nameArb,
    skills: skillsArb,
    module: moduleArb,
    concurrency: num(1, 2, 2 ** 31 - 1),
    lookahead: bool,
    timeoutMs: num(0, 1000, 2 ** 31 - 1),
    attempts: num(1, 3, 65_535),
    batch: orAny(fc.constantFrom<unknown>('auto', 1, 128).map(v)),
    validate: fnArb,
    onMessage: fnArb,
    messages: orAny(fc.constantFrom('heavy').map(v)),
  },
  {
    required: ['name', 'skills', 'module'],
    nearMisses: ['nmae', 'skill', 'modules', 'concurency', 'lookAhead', 'timeout', 'validator'],
  },
);

/** Definitions a troupe would take, more often than arbitrary ones. */
const expertsArb = sometimesAny(
  fc.record({
    arr: fc.array(expertArb, { minLength: 0, maxLength: 2 }),
    as: fc.constantFrom('plain', 'plain', 'plain', 'sparse', 'proxy', 'frozen' as const),
  }),
);

const durationArb = num(0, 1, 50, 2 ** 31 - 1);
const clockArb = objectArb(
  {
    now: orAny(fc.constant<Recipe>({ fn: 'returns', of: v(0) })),
    setTimeout: fnArb,
    clearTimeout: fnArb,
  },
  { nearMisses: ['nwo', 'setTimout'] },
);
const limitsArb = objectArb(
  {
    maxOldGenerationSizeMb: num(64, 256),
    maxYoungGenerationSizeMb: num(16),
    codeRangeSizeMb: num(16),
    stackSizeMb: num(4),
  },
  { nearMisses: ['maxOldGenerationSizeMB'] },
);

const troupeOptionsArb = sometimesAny(
  objectArb(
    {
      experts: expertsArb,
      // One thread when valid: a created troupe starts its threads at once.
      threads: orAny(fc.constant(v(1)), 5),
      timeoutMs: durationArb,
      attempts: num(1, 65_535),
      retryBackoffMs: durationArb,
      maxRetryBackoffMs: durationArb,
      maxQueuedSubtasks: num(1, 1_000_000),
      supervision: objectArb(
        {
          intensity: num(1, 5),
          windowMs: durationArb,
          restartBackoffMs: durationArb,
          maxRestartBackoffMs: durationArb,
          maxProbeFailures: num(1, 3),
        },
        { nearMisses: ['intensty'] },
      ),
      askTimeoutMs: num(1, 30_000),
      onMessageFailed: fnArb,
      cancelGraceMs: durationArb,
      idleSpinMs: num(0, 0.3, 10),
      maxBlackboardBytes: num(1, 1024),
      moduleLoadTimeoutMs: num(1, 10_000),
      resourceLimits: limitsArb,
      inspect: fnArb,
      clock: clockArb,
      random: fnArb,
    },
    { required: ['experts', 'threads'], nearMisses: ['thread', 'expert', 'timeout', 'attempt'] },
  ),
);

const moduleRegistration = fc.oneof(
  moduleArb,
  objectArb(
    {
      url: moduleArb,
      batch: orAny(fc.constantFrom<unknown>('auto', 1).map(v)),
      timeoutMs: durationArb,
    },
    { required: ['url'], nearMisses: ['uri', 'href'] },
  ),
);
const poolOptionsArb = sometimesAny(
  objectArb(
    {
      modules: orAny(
        fc.record({
          obj: fc.array(fc.tuple(fc.oneof(fc.constant('echo'), keyArb), moduleRegistration), {
            maxLength: 2,
          }),
          as: fc.constantFrom('plain', 'plain', 'nullProto', 'assigned', 'proxy' as const),
        }),
      ),
      threads: orAny(fc.constant(v(1)), 1),
      timeoutMs: durationArb,
      moduleLoadTimeoutMs: num(1, 10_000),
      startGraceMs: durationArb,
      closeTimeoutMs: durationArb,
      maxQueue: num(1, Number.POSITIVE_INFINITY),
      resourceLimits: limitsArb,
      sweepIntervalMs: num(1, 10),
      watchdogIntervalMs: num(1, 100),
      onStrayError: fnArb,
      cancelGraceMs: durationArb,
      idleSpinMs: num(0, 0.3, 10),
      context: bool,
      host: objectArb({ call: fnArb }, { nearMisses: ['cal'] }),
    },
    { required: ['modules', 'threads'], nearMisses: ['module', 'thread', 'maxqueue'] },
  ),
);

let created = 0;
let pools = 0;

describe('fuzz: the synchronous entries', () => {
  it(
    'createTroupe(options): a troupe or E_INVALID_OPTION, never another throw',
    async () => {
      await fuzz(
        FILE,
        fc.asyncProperty(troupeOptionsArb, async (recipe) => {
          const options = build(recipe);
          const got = await answer('createTroupe', () => createTroupe(options as never));
          if (got.ok) {
            created++;
            await answer('troupe.close', () => got.value.close({ force: true }));
          } else expect(got.error.code).toBe('E_INVALID_OPTION');
        }),
      );
      console.info(`createTroupe: ${created} of the generated options made a troupe`);
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'defineExpert(definition): the definition back or E_INVALID_OPTION',
    async () => {
      await fuzz(
        FILE,
        fc.asyncProperty(sometimesAny(expertArb), async (recipe) => {
          const definition = build(recipe);
          const got = await answer('defineExpert', () => defineExpert(definition as never));
          if (got.ok) expect(got.value).toBe(definition);
          else expect(got.error.code).toBe('E_INVALID_OPTION');
        }),
      );
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'createPool(options): a pool or E_INVALID_OPTION',
    async () => {
      await fuzz(
        FILE,
        fc.asyncProperty(poolOptionsArb, async (recipe) => {
          const options = build(recipe);
          const got = await answer('createPool', () => createPool(options as never));
          if (got.ok) {
            pools++;
            await answer('pool.destroy', () => got.value.destroy());
          } else expect(got.error.code).toBe('E_INVALID_OPTION');
        }),
      );
      console.info(`createPool: ${pools} of the generated options made a pool`);
    },
    PROPERTY_LIMIT_MS,
  );

  it(
    'describe, isTroupeError and serializeError never throw; a deserialized TroupeError has a known code',
    async () => {
      const wireArb = fc.oneof(
        anyArb,
        objectArb(
          {
            name: orAny(fc.constantFrom('TroupeError', 'Error', 'TypeError').map(v)),
            message: orAny(stringArb.map(v)),
            code: orAny(fc.oneof(fc.constantFrom(...Object.keys(ERROR_CODES)), keyArb).map(v)),
            stack: orAny(stringArb.map(v)),
            details: anyArb,
          },
          { required: ['name', 'message'], flavor: fc.constant('plain') },
        ),
      );
      await fuzz(
        FILE,
        fc.asyncProperty(wireArb, keyArb, async (recipe, code) => {
          const value = build(recipe);
          const text = await answer('describe', () => describeValue(value));
          expect(text.ok && typeof text.value === 'string').toBe(true);
          const is = await answer('isTroupeError', () => isTroupeError(value, code as never));
          expect(is.ok && typeof is.value === 'boolean').toBe(true);
          const wire = await answer('serializeError', () => serializeError(value));
          if (!wire.ok) throw new Error('serializeError threw');
          expect(typeof wire.value.message).toBe('string');
          structuredClone(wire.value);
          // What a thread sends back, and a wire made of strings (what a thread can send).
          for (const received of [wire.value, isStringWire(value) ? value : undefined]) {
            if (received === undefined) continue;
            const rebuilt = await answer('deserializeError', () =>
              deserializeError(received as never),
            );
            if (!rebuilt.ok) throw new Error('deserializeError threw');
            expect(rebuilt.value).toBeInstanceOf(Error);
            // Its message is the wire's own (it may be empty); its code must be a real one.
            if (isTroupeError(rebuilt.value))
              expect(Object.hasOwn(ERROR_CODES, rebuilt.value.code)).toBe(true);
          }
        }),
      );
    },
    PROPERTY_LIMIT_MS,
  );
});

/** An object of string fields only, as an error crosses from a thread. */
function isStringWire(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  try {
    if (Object.getPrototypeOf(value) !== Object.prototype) return false;
    const fields = Object.getOwnPropertyDescriptors(value);
    return Object.values(fields).every((d) => typeof d.value === 'string');
  } catch {
    return false;
  }
}
