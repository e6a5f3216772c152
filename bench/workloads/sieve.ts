/** A prime sieve made inside the worker: the primes below `units` × 10 000 (Eratosthenes). */
export default function sieve(units: number): number {
  const limit = units * 10_000;
  const composite = new Uint8Array(limit);
  let count = 0;
  for (let n = 2; n < limit; n++) {
    if (composite[n] === 1) continue;
    count++;
    for (let m = n * n; m < limit; m += n) composite[m] = 1;
  }
  return count;
}
