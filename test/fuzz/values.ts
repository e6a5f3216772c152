// Hostile values for the fuzz tests, generated as recipes: plain data that fast-check can print
// and shrink (`{ atom: 'revoked' }`, `{ obj: [['__proto__', { v: 1 }]], as: 'plain' }`), turned
// into the value itself — a revoked proxy, a getter that throws, a cycle — by `build`, afresh
// for every case.
import fc from 'fast-check';
import { TroupeError } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';

/** How an object recipe is built. */
export type ObjectFlavor =
  | 'plain' // own data fields, `__proto__` too (as JSON.parse makes it)
  | 'assigned' // o[k] = v: a `__proto__` key sets the prototype, as careless user code does
  | 'nullProto'
  | 'frozen'
  | 'getters' // every field a getter
  | 'changing' // every field a getter whose second read answers differently
  | 'proxy' // a transparent proxy of the plain object
  | 'instance'; // fields on an instance of a class

export type ArrayFlavor = 'plain' | 'sparse' | 'proxy' | 'frozen' | 'extra' | 'getter';

export type Recipe =
  | { v: unknown }
  | { atom: Atom }
  | { obj: [string, Recipe][]; as: ObjectFlavor }
  | { arr: Recipe[]; as: ArrayFlavor }
  | { fn: 'returns' | 'throws' | 'resolves' | 'rejects'; of: Recipe };

const revokedProxy = (target: object) => {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
};
const trap = (what: string) => () => {
  throw new Error(`${what} trap`);
};
const allTraps = (): ProxyHandler<object> => ({
  get: trap('get'),
  set: trap('set'),
  has: trap('has'),
  ownKeys: trap('ownKeys'),
  getPrototypeOf: trap('getPrototypeOf'),
  getOwnPropertyDescriptor: trap('getOwnPropertyDescriptor'),
  defineProperty: trap('defineProperty'),
  deleteProperty: trap('deleteProperty'),
  apply: trap('apply'),
  construct: trap('construct'),
  isExtensible: trap('isExtensible'),
  preventExtensions: trap('preventExtensions'),
  setPrototypeOf: trap('setPrototypeOf'),
});
const nested = (levels: number, array: boolean) => {
  const root: Record<string, unknown> | unknown[] = array ? [] : {};
  let node = root as Record<string, unknown>;
  for (let i = 0; i < levels; i++) {
    const next: Record<string, unknown> | unknown[] = array ? [] : {};
    if (array) (node as unknown as unknown[]).push(next);
    else node.n = next;
    node = next as Record<string, unknown>;
  }
  return root;
};

/** Named values no plain data can stand for. */
const ATOMS = {
  symbol: () => Symbol('fuzz'),
  fn: () =>
    function named() {
      return 1;
    },
  arrow: () => () => 1,
  asyncFn: () => async () => 1,
  generatorFn: () =>
    function* gen() {
      yield 1;
    },
  klass: () => class Fuzz {},
  boundFn: () => (() => 1).bind(null),
  date: () => new Date(0),
  invalidDate: () => new Date(Number.NaN),
  regexp: () => /fuzz/g,
  map: () => new Map<unknown, unknown>([['__proto__', 1]]),
  set: () => new Set([1]),
  weakMap: () => new WeakMap(),
  weakRef: () => new WeakRef({}),
  promise: () => Promise.resolve(1),
  handledRejection: () => {
    const p = Promise.reject(new Error('fuzz rejection'));
    p.catch(() => undefined);
    return p;
  },
  thenableThrows: () => ({
    // biome-ignore lint/suspicious/noThenProperty: the point of the value
    then() {
      throw new Error('then throws');
    },
  }),
  thenableResolves: () => ({
    // biome-ignore lint/suspicious/noThenProperty: the point of the value
    then(resolve: (v: unknown) => void) {
      resolve('from a thenable');
    },
  }),
  error: () => new Error('fuzz error'),
  typeError: () => new TypeError('fuzz type error'),
  troupeError: () => new TroupeError('E_TIMEOUT', 'a TroupeError of the caller'),
  unreadableError: () => {
    const error = new Error('x');
    Object.defineProperty(error, 'message', {
      get() {
        throw new Error('no message');
      },
    });
    return error;
  },
  nullProto: () => Object.create(null) as object,
  frozenEmpty: () => Object.freeze({}),
  revoked: () => revokedProxy({}),
  revokedFn: () => revokedProxy(() => 1),
  revokedArray: () => revokedProxy([]),
  throwingProxy: () => new Proxy({}, allTraps()),
  throwingFnProxy: () => new Proxy(() => 1, allTraps()),
  throwingArrayProxy: () => new Proxy([], allTraps()),
  emptyProxy: () => new Proxy({}, {}),
  throwingGetter: () => ({
    get x() {
      throw new Error('getter throws');
    },
  }),
  toStringThrows: () => ({
    toString() {
      throw new Error('toString throws');
    },
  }),
  toPrimitiveThrows: () => ({
    [Symbol.toPrimitive]() {
      throw new Error('toPrimitive throws');
    },
  }),
  symbolKeyed: () => ({ [Symbol('k')]: 1 }),
  cyclic: () => {
    const value: Record<string, unknown> = { a: 1 };
    value.self = value;
    return value;
  },
  cyclicArray: () => {
    const value: unknown[] = [1];
    value.push(value);
    return value;
  },
  deep: () => nested(10_000, false),
  deepArray: () => nested(10_000, true),
  sparseHuge: () => {
    const value: unknown[] = [];
    value.length = 2 ** 32 - 1;
    return value;
  },
  longArray: () => new Array(100_000).fill(0),
  uint8: () => new Uint8Array([1, 2, 3]),
  float64: () => new Float64Array([Number.NaN, -0]),
  bigInt64: () => new BigInt64Array([1n]),
  dataView: () => new DataView(new ArrayBuffer(4)),
  arrayBuffer: () => new ArrayBuffer(8),
  detachedBuffer: () => {
    const buffer = new ArrayBuffer(8);
    structuredClone(buffer, { transfer: [buffer] });
    return buffer;
  },
  sharedBuffer: () => new SharedArrayBuffer(8),
  buffer: () => Buffer.from('fuzz'),
  echoUrl: () => fixture('echo'),
  echoPath: () => fixture('echo').pathname,
  echoHref: () => fixture('echo').href,
  behaveUrl: () => fixture('behave'),
  missingUrl: () => new URL('file:///nonexistent/fuzz.mjs'),
  brokenUrl: () => fixture('broken-on-load'),
  httpUrl: () => new URL('http://localhost/fuzz.mjs'),
  abortSignal: () => new AbortController().signal,
  abortedSignal: () => AbortSignal.abort(new Error('aborted by the fuzz test')),
  abortedHostile: () => AbortSignal.abort(revokedProxy({})),
  objectPrototype: () => Object.prototype,
  arrayPrototype: () => Array.prototype,
  globalThis: () => globalThis,
  bigString: () => 'x'.repeat(1_000_000),
  protoPayload: () => JSON.parse('{"__proto__":{"polluted":"yes"}}') as unknown,
  constructorPayload: () => ({ constructor: { prototype: { polluted: 'yes' } } }),
  boxedString: () => Object('fuzz') as object,
  boxedNumber: () => Object(1) as object,
  args: function (this: unknown) {
    // biome-ignore lint/complexity/noArguments: the point of the value
    return arguments;
  },
} satisfies Record<string, () => unknown>;

export type Atom = keyof typeof ATOMS;

class Instance {
  method(): number {
    return 1;
  }
}

/** Builds the value a recipe describes (every call builds a new one). */
export function build(recipe: Recipe): unknown {
  if ('v' in recipe) return recipe.v;
  if ('atom' in recipe) return ATOMS[recipe.atom]();
  if ('fn' in recipe) {
    const of = recipe.of;
    const fn = {
      returns: () => build(of),
      throws: () => {
        throw build(of);
      },
      resolves: async () => build(of),
      rejects: async () => {
        throw build(of);
      },
    }[recipe.fn];
    // Called as a `then` (an object with a `then` key awaited), it settles the await as its
    // kind says: a thenable that never calls back is a promise that never settles, which only
    // a deadline ends, and that is the caller's choice, not a fault of troupe.
    return function (this: unknown, ...args: unknown[]) {
      const [resolve, reject] = args;
      if (args.length === 2 && isSettler(resolve) && isSettler(reject)) {
        const settle = recipe.fn === 'returns' || recipe.fn === 'resolves' ? resolve : reject;
        settle(build(of));
        return undefined;
      }
      return fn();
    };
  }
  if ('arr' in recipe) return buildArray(recipe.arr.map(build), recipe.as);
  return buildObject(
    recipe.obj.map(([key, value]) => {
      const built = build(value);
      return [
        key,
        key === 'then' && typeof built === 'function'
          ? callingBack(built as (...args: never) => unknown)
          : built,
      ];
    }),
    recipe.as,
  );
}

/**
 * Whether a function is one of the pair the engine passes to a `then` it awaits: native,
 * unnamed, one parameter. Any two functions are not enough: validate(result, input) with a
 * generated function in both places would be taken for a `then` call, and the harness, not
 * troupe, would leave a rejected promise unhandled.
 */
function isSettler(value: unknown): value is (settled: unknown) => void {
  return (
    typeof value === 'function' &&
    value.name === '' &&
    value.length === 1 &&
    Function.prototype.toString.call(value) === 'function () { [native code] }'
  );
}

/**
 * A function under a `then` key that calls back when awaited. A plain function there (one of
 * ATOMS) never would: awaiting its object is a promise that never settles, which only a
 * deadline ends (test/runtime/limits.test.ts), a hang of the caller's making, not troupe's.
 */
function callingBack(fn: (...args: never) => unknown) {
  return function (this: unknown, ...args: unknown[]) {
    const [resolve, reject] = args;
    if (args.length === 2 && isSettler(resolve) && isSettler(reject)) return resolve(1);
    return Reflect.apply(fn, this, args);
  };
}

function own(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function buildObject(entries: [string, unknown][], as: ObjectFlavor): object {
  switch (as) {
    case 'plain': {
      const o = {};
      for (const [k, v] of entries) own(o, k, v);
      return o;
    }
    case 'assigned': {
      const o: Record<string, unknown> = {};
      for (const [k, v] of entries) {
        try {
          o[k] = v;
        } catch {
          // a prototype set by an earlier `__proto__` key may refuse the write
        }
      }
      return o;
    }
    case 'nullProto': {
      const o = Object.create(null) as object;
      for (const [k, v] of entries) own(o, k, v);
      return o;
    }
    case 'frozen':
      return Object.freeze(buildObject(entries, 'plain'));
    case 'getters': {
      const o = {};
      for (const [k, v] of entries)
        Object.defineProperty(o, k, { get: () => v, enumerable: true, configurable: true });
      return o;
    }
    case 'changing': {
      const o = {};
      for (const [k, v] of entries) {
        let reads = 0;
        Object.defineProperty(o, k, {
          get: () => (++reads === 1 ? v : revokedProxy({})),
          enumerable: true,
          configurable: true,
        });
      }
      return o;
    }
    case 'proxy':
      return new Proxy(buildObject(entries, 'plain'), {});
    case 'instance': {
      const o = new Instance();
      for (const [k, v] of entries) own(o, k, v);
      return o;
    }
  }
}

function buildArray(items: unknown[], as: ArrayFlavor): unknown[] {
  switch (as) {
    case 'plain':
      return items;
    case 'sparse': {
      // Every other slot a hole.
      const out: unknown[] = [];
      items.forEach((item, i) => {
        out[2 * i + 1] = item;
      });
      return out;
    }
    case 'proxy':
      return new Proxy(items, {});
    case 'frozen':
      return Object.freeze(items) as unknown[];
    case 'extra':
      own(items, 'polluted', 'no');
      own(items, '__proto__', { polluted: 'yes' });
      return items;
    case 'getter':
      Object.defineProperty(items, 0, {
        get() {
          throw new Error('index getter throws');
        },
        enumerable: true,
      });
      return items;
  }
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

/** Keys and ids that hit prototypes, plus strings of every kind. */
export const KEYS = [
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'valueOf',
  'hasOwnProperty',
  'isPrototypeOf',
  '__defineGetter__',
  'then',
  'polluted',
  'length',
  '0',
  '',
  ' ',
  'a',
  'b',
  '\u0000',
  '💥',
  'coordinator',
  'run-1',
] as const;

export const keyArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 6 }) },
);

const NUMBERS = [
  0,
  -0,
  1,
  2,
  3,
  5,
  6,
  -1,
  0.5,
  1.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  Number.MAX_SAFE_INTEGER + 2,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  1e21,
  1025,
  65_536,
];

export const numberArb: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NUMBERS) },
  { weight: 1, arbitrary: fc.double() },
  { weight: 1, arbitrary: fc.integer() },
);

const STRINGS = [
  '',
  'auto',
  'heavy',
  'file:',
  'file:///',
  'file:///nonexistent.mjs',
  'http://x/y.mjs',
  '/',
  '/nonexistent/fuzz.mjs',
  './x.mjs',
  '../x',
  '%s%n',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a template placeholder as data
  '${x}',
  'a'.repeat(300),
  '$input.dir',
  '$input.__proto__',
  '$input.constructor',
];

export const stringArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 2, arbitrary: keyArb },
  { weight: 2, arbitrary: fc.constantFrom(...STRINGS) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 10 }) },
);

/** A plain printable value: a primitive of any kind. */
export const primitiveArb: fc.Arbitrary<Recipe> = fc
  .oneof(
    numberArb,
    stringArb,
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
    fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
  )
  .map((v) => ({ v }));

const atomArb: fc.Arbitrary<Recipe> = fc
  .constantFrom(...(Object.keys(ATOMS) as Atom[]))
  .map((atom) => ({ atom }));

const objectFlavor = fc.oneof(
  { weight: 6, arbitrary: fc.constant<ObjectFlavor>('plain') },
  {
    weight: 4,
    arbitrary: fc.constantFrom<ObjectFlavor>(
      'assigned',
      'nullProto',
      'frozen',
      'getters',
      'changing',
      'proxy',
      'instance',
    ),
  },
);
const arrayFlavor = fc.oneof(
  { weight: 6, arbitrary: fc.constant<ArrayFlavor>('plain') },
  {
    weight: 3,
    arbitrary: fc.constantFrom<ArrayFlavor>('sparse', 'proxy', 'frozen', 'extra', 'getter'),
  },
);

/** Any value, hostile or not, nested a few levels. */
export const anyArb: fc.Arbitrary<Recipe> = fc.letrec<{ any: Recipe }>((tie) => ({
  any: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    { weight: 4, arbitrary: primitiveArb },
    { weight: 4, arbitrary: atomArb },
    {
      weight: 2,
      arbitrary: fc.record({
        obj: fc.array(fc.tuple(keyArb, tie('any')), { maxLength: 4 }),
        as: objectFlavor,
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ arr: fc.array(tie('any'), { maxLength: 4 }), as: arrayFlavor }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        fn: fc.constantFrom<'returns' | 'throws' | 'resolves' | 'rejects'>(
          'returns',
          'throws',
          'resolves',
          'rejects',
        ),
        of: tie('any'),
      }),
    },
  ),
})).any;

/** A value that structured clone carries: plain JSON-like data, with prototype keys. */
export const dataArb: fc.Arbitrary<Recipe> = fc.letrec<{ data: Recipe }>((tie) => ({
  data: fc.oneof(
    { depthSize: 'small', maxDepth: 3 },
    {
      weight: 4,
      arbitrary: primitiveArb.filter((r) => typeof (r as { v: unknown }).v !== 'symbol'),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        obj: fc.array(fc.tuple(keyArb, tie('data')), { maxLength: 4 }),
        as: fc.constant<ObjectFlavor>('plain'),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        arr: fc.array(tie('data'), { maxLength: 4 }),
        as: fc.constant<ArrayFlavor>('plain'),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom<Recipe>(
        { atom: 'protoPayload' },
        { atom: 'constructorPayload' },
        { atom: 'date' },
        { atom: 'map' },
        { atom: 'uint8' },
      ),
    },
  ),
})).data;

/** `valid` most of the time, else anything. */
export const orAny = (valid: fc.Arbitrary<Recipe>, validWeight = 3): fc.Arbitrary<Recipe> =>
  fc.oneof({ weight: validWeight, arbitrary: valid }, { weight: 1, arbitrary: anyArb });

export const v = (value: unknown): Recipe => ({ v: value });
export const atom = (name: Atom): Recipe => ({ atom: name });

/**
 * An object of some of `fields` (each value from its arbitrary), now and then with a near miss of
 * a key or a prototype key, built mostly plain.
 */
export function objectArb(
  fields: Record<string, fc.Arbitrary<Recipe>>,
  options: { required?: string[]; nearMisses?: string[]; flavor?: fc.Arbitrary<ObjectFlavor> } = {},
): fc.Arbitrary<Recipe> {
  const required = options.required ?? [];
  const extra = fc.constantFrom(
    ...(options.nearMisses ?? []),
    '__proto__',
    'constructor',
    'prototype',
    'toString',
    'then',
  );
  const keys = Object.keys(fields);
  return fc
    .record({
      present: fc.subarray(keys.filter((k) => !required.includes(k))),
      values: fc.record(fields),
      extras: fc.oneof(
        { weight: 6, arbitrary: fc.constant([]) },
        { weight: 1, arbitrary: fc.array(fc.tuple(extra, anyArb), { maxLength: 2 }) },
      ),
      as: options.flavor ?? objectFlavor,
    })
    .map(({ present, values, extras, as }) => ({
      obj: [
        ...keys
          .filter((k) => required.includes(k) || present.includes(k))
          .map((k): [string, Recipe] => [k, values[k] as Recipe]),
        ...extras,
      ],
      as,
    }));
}

/** A hostile value now and then, in place of a whole argument. */
export const sometimesAny = (arb: fc.Arbitrary<Recipe>): fc.Arbitrary<Recipe> => orAny(arb, 8);
