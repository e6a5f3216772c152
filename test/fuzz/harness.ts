// The fuzz tests' shared harness: one seeded fast-check configuration, the one assertion every
// case makes (a normal answer or a TroupeError with a known code), a per-case time limit, and
// the checks made around every property (no prototype polluted, nothing uncaught).
import fc from 'fast-check';
import { afterAll, beforeAll, expect } from 'vitest';
import { describe as describeValue, ERROR_CODES, isTroupeError } from '../../dist/src/index.js';

/** The seed CI runs with: a fixed one, so that a red CI is the same red on every clone. */
export const DEFAULT_SEED = 20261207;

function seedFromEnv(): number {
  const raw = process.env.FUZZ_SEED;
  if (raw === undefined || raw.trim() === '') return DEFAULT_SEED;
  if (raw.trim() === 'random') return Math.floor(Math.random() * 2 ** 31);
  const seed = Number(raw);
  if (!Number.isInteger(seed))
    throw new Error(`FUZZ_SEED: expected an integer or "random", got "${raw}"`);
  return seed;
}

/** One seed for every property of the run: FUZZ_SEED (a number, or "random" to explore), else DEFAULT_SEED. */
export const SEED = seedFromEnv();
// Said before any case runs: a case that kills the process (a V8 fatal error) prints no report.
if (SEED !== DEFAULT_SEED) console.info(`fuzz: seed ${SEED}`);

/** Generated cases per entry. */
export const CASES = 10_000;

/** How long one case may take before it counts as a hang, ms. */
export const CASE_LIMIT_MS = 5_000;

/** The vitest time limit of one property (10 000 cases, and shrinking on a failure). */
export const PROPERTY_LIMIT_MS = 180_000;

/** Runs a property with the shared seed; a failure says how to replay it. */
export async function fuzz<T>(
  file: string,
  property: fc.IAsyncPropertyWithHooks<T> | fc.IPropertyWithHooks<T>,
  numRuns = CASES,
): Promise<void> {
  const guard = prototypeGuard();
  const rerun = `Rerun: FUZZ_SEED=${SEED} npx vitest run test/fuzz/${file}`;
  const details = await fc.check(property as fc.IAsyncProperty<T>, { seed: SEED, numRuns });
  if (details.failed) {
    // The report holds the seed, the path to the failing case and the counterexample.
    console.error(`fuzz ${file}: seed ${SEED}\n${rerun}`);
    const cause = details.errorInstance;
    throw new Error(`${fc.defaultReportMessage(details)}\nGot: ${text(cause)}\n${rerun}`);
  }
  try {
    expect(details.numRuns).toBeGreaterThanOrEqual(numRuns);
    guard.check();
    await strays.check();
  } catch (error) {
    console.error(`fuzz ${file}: seed ${SEED}\n${rerun}`);
    throw new Error(`${text(error)}\n(seed ${SEED}) ${rerun}`);
  }
}

/** What a call answered: its value, or the TroupeError it threw or rejected with. */
export type Answer<T> = { ok: true; value: T } | { ok: false; error: Error & { code: string } };

/**
 * Calls `call` and waits for it (at most {@link CASE_LIMIT_MS}): a normal answer or a
 * TroupeError with a known code and a message. Anything else fails the case, naming it.
 */
export async function answer<T>(what: string, call: () => T | Promise<T>): Promise<Answer<T>> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${CASE_LIMIT_MS} ms (a hang)`)),
      CASE_LIMIT_MS,
    );
  });
  let got: Answer<T>;
  try {
    // Only a promise is awaited: a value a synchronous entry hands back (defineExpert returns
    // the definition it was given) may be a thenable, and awaiting it would run user code.
    const result = call();
    got = {
      ok: true,
      value: result instanceof Promise ? await Promise.race([result, hang]) : result,
    };
  } catch (error) {
    if (error instanceof Error && /\(a hang\)$/.test(error.message)) throw error;
    expectTyped(what, error);
    got = { ok: false, error: error as Error & { code: string } };
  } finally {
    clearTimeout(timer);
    checkPrototypes(what);
  }
  // A rejection nobody handled is reported once the microtasks have run: blame this case.
  await new Promise((resolve) => setImmediate(resolve));
  if (seen.length > 0) {
    const found = seen.splice(0).map(({ kind, error }) => `${kind}: ${text(error)}`);
    throw new Error(`${what}: ${found.join('\n')}`);
  }
  return got;
}

/** A TroupeError whose code is in the catalogue and whose message is a non-empty string. */
export function expectTyped(what: string, error: unknown): void {
  if (!isTroupeError(error))
    throw new Error(`${what}: threw ${describeValue(error)}, not a TroupeError: ${text(error)}`);
  if (!Object.hasOwn(ERROR_CODES, error.code))
    throw new Error(`${what}: a TroupeError with an unknown code ${String(error.code)}`);
  // E_INTERNAL is troupe's own bug, never the answer to a value.
  if (error.code === 'E_INTERNAL') throw new Error(`${what}: ${text(error)}`);
  if (typeof error.message !== 'string' || error.message.length === 0)
    throw new Error(`${what}: a TroupeError ${error.code} without a message`);
}

function text(error: unknown): string {
  try {
    if (!(error instanceof Error)) return `${describeValue(error)}: ${String(error)}`;
    const cause = (error as { cause?: unknown }).cause;
    return `${error.stack ?? error.message}${cause === undefined ? '' : `\ncause: ${text(cause)}`}`;
  } catch {
    return describeValue(error);
  }
}

// ---------------------------------------------------------------------------------------------
// Prototypes

/** Keys a polluting payload of the arbitraries sets (`{ "__proto__": { "polluted": … } }`). */
export const CANARIES = ['polluted', 'isAdmin', 'canary'] as const;

const PROTOTYPES: [string, object][] = [
  ['Object.prototype', Object.prototype],
  ['Array.prototype', Array.prototype],
  ['Function.prototype', Function.prototype],
  ['String.prototype', String.prototype],
  ['Number.prototype', Number.prototype],
  ['Promise.prototype', Promise.prototype],
  ['Error.prototype', Error.prototype],
];
const COUNTS = PROTOTYPES.map(([, proto]) => Reflect.ownKeys(proto).length);

/** Cheap, after every case: no prototype gained a key, no canary shows on a fresh object. */
function checkPrototypes(what: string): void {
  PROTOTYPES.forEach(([name, proto], i) => {
    if (Reflect.ownKeys(proto).length !== COUNTS[i])
      throw new Error(`${what}: ${name} has new own keys (polluted)`);
  });
  const fresh: Record<string, unknown> = {};
  for (const key of CANARIES)
    if (fresh[key] !== undefined || ([] as unknown as Record<string, unknown>)[key] !== undefined)
      throw new Error(`${what}: ({}).${key} is defined (polluted)`);
}

/** Thorough, around a property: every own key of the prototypes, with the same value. */
function prototypeGuard(): { check(): void } {
  const snapshot = PROTOTYPES.map(([name, proto]) => ({
    name,
    proto,
    descriptors: Object.getOwnPropertyDescriptors(proto),
  }));
  return {
    check() {
      for (const { name, proto, descriptors } of snapshot) {
        const now = Object.getOwnPropertyDescriptors(proto);
        expect(Reflect.ownKeys(now), `${name}: own keys`).toEqual(Reflect.ownKeys(descriptors));
        for (const key of Reflect.ownKeys(descriptors)) {
          const a = (descriptors as Record<PropertyKey, PropertyDescriptor>)[key];
          const b = (now as Record<PropertyKey, PropertyDescriptor>)[key];
          expect(b?.value === a?.value && b?.get === a?.get, `${name}.${String(key)}`).toBe(true);
        }
      }
      for (const key of CANARIES) expect(({} as Record<string, unknown>)[key]).toBeUndefined();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Uncaught errors and unhandled rejections

const seen: { kind: string; error: unknown }[] = [];
const onUncaught = (error: unknown) => seen.push({ kind: 'uncaught exception', error });
const onUnhandled = (error: unknown) => seen.push({ kind: 'unhandled rejection', error });

const strays = {
  /** Lets pending rejections surface, then expects none. */
  async check(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 20));
    const found = seen.splice(0).map(({ kind, error }) => `${kind}: ${text(error)}`);
    if (found.length > 0)
      throw new Error(
        `${found.length} uncaught exceptions or unhandled rejections during the property:\n${found.slice(0, 5).join('\n')}`,
      );
  },
};

/** Records uncaught exceptions and unhandled rejections for the file; none may occur. */
export function watchStrays(): void {
  beforeAll(() => {
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(async () => {
    try {
      await strays.check();
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUnhandled);
    }
  });
}
