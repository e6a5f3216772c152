// The hunter expert: asks the referee for a stretch of numbers, counts the primes in it by trial
// division with the shared small primes, reports the count with its next ask, until the referee
// has nothing left. Work is handed out on demand, so a slow thread simply takes fewer stretches.
export default async function hunter(input, ctx) {
  const limit = input?.limit;
  const small = await ctx.lookup('small-primes');
  if (small === undefined) throw new Error('hunter: the sieve shared no small primes');
  let report;
  let stretches = 0;
  let found = 0;
  for (;;) {
    // The ask that gets no stretch back still carries the last report.
    const stretch = await ctx.ask('referee', { report, limit });
    if (stretch === null) break;
    const count = countPrimes(stretch.from, stretch.to, small);
    report = { ...stretch, count };
    stretches++;
    found += count;
    ctx.progress(stretch.done);
  }
  return { stretches, found };
}

function countPrimes(from, to, small) {
  let count = 0;
  for (let n = Math.max(from, 2); n < to; n++) {
    let prime = true;
    for (let i = 0; i < small.length; i++) {
      const p = small[i];
      if (p * p > n) break;
      if (n % p === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}
