/** The speedup suite's workloads by name, for the worker modules of the pools that take one. */
import compress from '../compress.js';
import json from '../json.js';
import sha256 from '../sha256.js';
import sieve from '../sieve.js';

export const handlers: Record<string, (units: number) => unknown> = {
  sha256,
  compress,
  sieve,
  json,
};
