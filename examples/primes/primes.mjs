#!/usr/bin/env node
// Experts that cooperate through messages: count the primes below a limit.
//   node examples/primes/primes.mjs [--limit N] [--threads N] [--json]
// - the sieve shares the small primes on the run's blackboard (ctx.share / ctx.lookup);
// - hunters ask the referee (an inline expert, on the main thread) for stretches of numbers,
//   one after another, and report their counts with each ask (ctx.ask);
// - the plan checks the total against a second, independent count.
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { createTroupe, defineExpert } from 'troupe';

let args;
try {
  args = parseArgs({
    options: {
      limit: { type: 'string', default: '20000000' },
      threads: { type: 'string', default: String(availableParallelism()) },
      json: { type: 'boolean', default: false },
    },
  }).values;
} catch (error) {
  process.stderr.write(`primes: ${error.message}\n`);
  process.exit(2);
}
const limit = Number(args.limit);
const threads = Number(args.threads);
for (const [flag, value] of [
  ['limit', limit],
  ['threads', threads],
]) {
  if (!Number.isSafeInteger(value) || value < 2) {
    process.stderr.write(`primes: --${flag}: expected an integer ≥ 2, got "${args[flag]}"\n`);
    process.exit(2);
  }
}

/** The referee: hands out stretches of [0, limit) and adds up what the hunters report. */
function referee(limit, stretch) {
  let next = 0;
  let counted = 0;
  const byHunter = {};
  return {
    total: () => counted,
    byHunter,
    onMessage: ({ report }, from) => {
      if (report !== undefined) {
        counted += report.count;
        byHunter[from] = (byHunter[from] ?? 0) + 1;
      }
      if (next >= limit) return null;
      const from_ = next;
      next = Math.min(limit, next + stretch);
      return { from: from_, to: next, done: next / limit };
    },
  };
}

const ref = referee(limit, Math.max(10_000, Math.ceil(limit / (threads * 64))));
const troupe = createTroupe({
  threads,
  experts: [
    defineExpert({
      name: 'sieve',
      skills: { sieve: 1 },
      module: new URL('./sieve.mjs', import.meta.url),
    }),
    defineExpert({
      name: 'hunter',
      skills: { hunt: 1 },
      module: new URL('./hunter.mjs', import.meta.url),
      concurrency: threads,
    }),
    defineExpert({
      name: 'referee',
      skills: { referee: 1 },
      // Its messages run here, on the main thread; its module only has to load.
      module: new URL('./hunter.mjs', import.meta.url),
      onMessage: ref.onMessage,
    }),
  ],
});

const outcome = await troupe.run(
  {
    name: 'primes',
    analyze: ({ limit }) => [
      { id: 'sieve', needs: 'sieve', input: { limit } },
      ...Array.from({ length: threads }, (_, i) => ({
        id: `hunt-${i + 1}`,
        needs: 'hunt',
        after: ['sieve'],
      })),
    ],
    integrate: (contributions) => {
      const hunters = contributions.filter((c) => c.needs === 'hunt');
      return {
        limit,
        primes: hunters.reduce((sum, c) => sum + c.output.found, 0),
        stretches: hunters.reduce((sum, c) => sum + c.output.stretches, 0),
      };
    },
    validate: (result) => {
      if (result.primes !== ref.total())
        throw new Error(`hunters found ${result.primes}, the referee counted ${ref.total()}`);
      return { agreed: true };
    },
  },
  { limit },
);
await troupe.close();

if (outcome.status !== 'done') {
  process.stderr.write(`primes: the run ${outcome.status}: ${outcome.error.message}\n`);
  process.exit(1);
}
const { metrics } = outcome;
if (args.json) {
  process.stdout.write(
    `${JSON.stringify({ status: outcome.status, result: outcome.result, quality: outcome.quality, metrics })}\n`,
  );
} else {
  const { primes, stretches } = outcome.result;
  process.stdout.write(
    `${primes} primes below ${limit}, in ${stretches} stretches handed out by the referee\n` +
      `messages: ${metrics.messages} (${metrics.messagesPerSubtask.toFixed(1)} per subtask), ` +
      metrics.messagePairs.map((p) => `${p.from} → ${p.to}: ${p.count}`).join(', ') +
      `\nwall ${metrics.wallMs.toFixed(0)} ms, parallelism ${metrics.parallelism.toFixed(2)} on ${threads} threads\n`,
  );
}
