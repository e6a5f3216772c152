// The sieve expert: finds the primes up to √limit and shares them on the run's blackboard, where
// every hunter looks them up. (ctx.deps would carry them too, but only to declared dependents;
// the blackboard reaches any subtask of the run.)
export default async function sieve({ limit }, ctx) {
  const root = Math.floor(Math.sqrt(limit)) + 1;
  const composite = new Uint8Array(root + 1);
  const primes = [];
  for (let n = 2; n <= root; n++) {
    if (composite[n]) continue;
    primes.push(n);
    for (let m = n * n; m <= root; m += n) composite[m] = 1;
  }
  await ctx.share('small-primes', Int32Array.from(primes));
  return primes.length;
}
