import { describe, expect, it } from 'vitest';
import {
  describe as describeValue,
  deserializeError,
  ERROR_CODES,
  isTroupeError,
  serializeError,
  TroupeError,
} from '../../dist/src/index.js';

describe('TroupeError', () => {
  it('has a stable code, a cause, details and a JSON form', () => {
    const cause = new RangeError('inner');
    const error = new TroupeError('E_TIMEOUT', 'too slow', { cause, details: { timeoutMs: 5 } });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('TroupeError');
    expect(error.code).toBe('E_TIMEOUT');
    expect(error.cause).toBe(cause);
    expect(JSON.parse(JSON.stringify(error))).toEqual({
      name: 'TroupeError',
      code: 'E_TIMEOUT',
      message: 'too slow',
      details: { timeoutMs: 5 },
      cause: { name: 'RangeError', message: 'inner' },
    });
    expect(isTroupeError(error)).toBe(true);
    expect(isTroupeError(error, 'E_TIMEOUT')).toBe(true);
    expect(isTroupeError(error, 'E_CLOSED')).toBe(false);
    expect(isTroupeError(cause)).toBe(false);
  });

  it('the catalogue holds every code DESIGN.md lists, and the Redis executor’s E_UNAVAILABLE', () => {
    expect(Object.keys(ERROR_CODES).sort()).toEqual(
      [
        'E_INVALID_OPTION',
        'E_INVALID_GRAPH',
        'E_CYCLE',
        'E_NO_EXPERT',
        'E_MODULE_LOAD',
        'E_PROBE_FAILED',
        'E_EXPERT_RETIRED',
        'E_TASK_FAILED',
        'E_WORKER_CRASHED',
        'E_WORKER_OOM',
        'E_TIMEOUT',
        'E_CANCELLED',
        'E_QUALITY',
        'E_QUEUE_FULL',
        'E_CLOSED',
        'E_NOT_CLONEABLE',
        'E_TOO_LARGE',
        'E_ASK_TIMEOUT',
        'E_NO_RECIPIENT',
        'E_ASK_DEADLOCK',
        'E_UNAVAILABLE',
        'E_PLAN_INVALID',
        'E_OUTSIDE_PLAN',
        'E_INTERNAL',
      ].sort(),
    );
  });
});

describe('crossing the thread boundary', () => {
  it('a TroupeError comes back as a TroupeError with code, details, cause and stack', () => {
    const original = new TroupeError('E_ASK_TIMEOUT', 'no answer', {
      cause: new TypeError('x'),
      details: { to: 'hasher' },
    });
    const wire = structuredClone(serializeError(original));
    const rebuilt = deserializeError(wire) as TroupeError;
    expect(rebuilt).toBeInstanceOf(TroupeError);
    expect(rebuilt.code).toBe('E_ASK_TIMEOUT');
    expect(rebuilt.details).toEqual({ to: 'hasher' });
    expect(rebuilt.stack).toBe(original.stack);
    expect((rebuilt.cause as Error).name).toBe('TypeError');
  });

  it('a plain error keeps its name, message, code and stack', () => {
    const original = Object.assign(new SyntaxError('bad'), { code: 'ERR_X' });
    const rebuilt = deserializeError(structuredClone(serializeError(original)));
    expect(rebuilt.name).toBe('SyntaxError');
    expect(rebuilt.message).toBe('bad');
    expect((rebuilt as { code?: string }).code).toBe('ERR_X');
    expect(rebuilt.stack).toBe(original.stack);
  });

  it('non-errors thrown become errors; cyclic causes stop', () => {
    expect(serializeError('text')).toEqual({ name: 'Error', message: 'text' });
    expect(serializeError(42).message).toBe('non-error value thrown: 42');
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(() => structuredClone(serializeError(a))).not.toThrow();
  });

  it("a wire whose code is a key of the catalogue's prototype is a plain Error, not a TroupeError", () => {
    for (const code of ['__proto__', 'toString', 'constructor', 'hasOwnProperty']) {
      const rebuilt = deserializeError({ name: 'TroupeError', message: 'from a thread', code });
      expect(isTroupeError(rebuilt), code).toBe(false);
      expect((rebuilt as { code?: string }).code).toBe(code);
    }
  });

  it('details that cannot be cloned are dropped, the error is kept', () => {
    const error = new TroupeError('E_INTERNAL', 'x', { details: { fn: () => 1 } });
    const wire = serializeError(error);
    expect(wire).toMatchObject({ code: 'E_INTERNAL', message: 'x' });
    expect(wire.details).toBeUndefined();
  });
});

describe('an object with a proxy up its prototype chain', () => {
  it('is no TroupeError, and describing or serializing it does not throw', () => {
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    const value = Object.create(proxy) as object;
    expect(isTroupeError(value)).toBe(false);
    expect(isTroupeError(value, 'E_TIMEOUT')).toBe(false);
    expect(serializeError(value).message).toMatch(/^non-error value thrown: /);
    expect(typeof describeValue(value)).toBe('string');
  });
});

describe('describe()', () => {
  it('renders what was given', () => {
    expect(describeValue(null)).toBe('null');
    expect(describeValue(3)).toBe('number 3');
    expect(describeValue('s')).toBe('"s"');
    expect(describeValue([1])).toBe('an array of length 1');
    expect(describeValue(new Map())).toBe('an instance of Map');
    expect(describeValue({})).toBe('an object');
    expect(describeValue(function named() {})).toBe('a function (named)');
  });
});
