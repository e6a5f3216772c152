// Main-thread functions of the primes plan (primes.plan.json): the referee's inline message
// handler, which hands out stretches of [0, limit) on demand (one state per run), the
// integration, and a validation that counts the primes again, independently, with a sieve.
const runs = new Map();

export function onMessage({ limit }, _from, ctx) {
  let state = runs.get(ctx.runId);
  if (state === undefined) {
    state = { next: 0, stretch: Math.max(10_000, Math.ceil(limit / 128)) };
    runs.set(ctx.runId, state);
  }
  if (state.next >= limit) return null;
  const from = state.next;
  state.next = Math.min(limit, from + state.stretch);
  return { from, to: state.next, done: state.next / limit };
}

export function integrate(contributions, input) {
  const hunters = contributions.filter((c) => c.needs === 'hunt');
  return {
    limit: input.limit,
    primes: hunters.reduce((sum, c) => sum + c.output.found, 0),
    stretches: hunters.reduce((sum, c) => sum + c.output.stretches, 0),
  };
}

export function validate(result) {
  const composite = new Uint8Array(result.limit);
  let count = 0;
  for (let n = 2; n < result.limit; n++) {
    if (composite[n]) continue;
    count++;
    for (let m = n * n; m < result.limit; m += n) composite[m] = 1;
  }
  if (count !== result.primes)
    throw new Error(`the hunters found ${result.primes} primes, a sieve finds ${count}`);
  return { agreed: true };
}
