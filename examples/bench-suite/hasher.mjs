// An expert module for the example suite: hashes a generated buffer (made here, on the thread,
// so that nothing large crosses between threads) with the synchronous crypto call.
import { createHash } from 'node:crypto';

export default function hasher({ seed, kib }) {
  const buffer = Buffer.alloc(kib * 1024, seed % 251);
  let digest = createHash('sha256').update(buffer).digest();
  for (let i = 0; i < 8; i++) digest = createHash('sha256').update(digest).update(buffer).digest();
  return digest.toString('hex');
}
