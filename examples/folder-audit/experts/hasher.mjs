// SHA-256 of a file, read here on the worker thread (the main thread never holds its contents).
// Synchronous calls on purpose: the async ones would spread over libuv's threads.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

// Input: { path }, or { item: { path } } when a plan file fans out over a glob.
export default function hash(input) {
  const path = input.path ?? input.item.path;
  return { sha256: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

export function probe() {
  return createHash('sha256').update('probe').digest('hex').length === 64;
}
