/**
 * SHA-256 work, as sha256.ts, or — for an input that says so — a handler that kills its thread
 * (`process.exit`): the poisonous input of a service, for the runtime suite's isolation case.
 */
import sha256 from './sha256.js';

export default function poison(input: { rounds: number; poison?: boolean }): string {
  if (input.poison === true) process.exit(1);
  return sha256(input.rounds);
}
