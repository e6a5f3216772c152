// A user's benchmark suite: `troupe bench --suite examples/bench-suite/suite.mjs`.
// It exports the experts, a plan and its input; troupe measures the plan run by a troupe with
// 1 and with N threads against the same handlers called inline on the main thread.
import { defineExpert } from 'troupe';

export const name = 'hash 32 buffers, then fold the digests';

export const experts = [
  defineExpert({
    name: 'hasher',
    skills: { hash: 3 },
    module: new URL('./hasher.mjs', import.meta.url),
    concurrency: 8,
  }),
  defineExpert({
    name: 'summary',
    skills: { fold: 1 },
    module: new URL('./summary.mjs', import.meta.url),
  }),
];

export const input = { chunks: 32, kib: 512 };

export const plan = {
  analyze: ({ chunks, kib }) => [
    ...Array.from({ length: chunks }, (_, i) => ({
      id: `h${i}`,
      needs: 'hash',
      input: { seed: i, kib },
    })),
    {
      id: 'fold',
      needs: 'fold',
      after: Array.from({ length: chunks }, (_, i) => `h${i}`),
    },
  ],
  integrate: (contributions) => contributions.find((c) => c.subtask === 'fold')?.output,
};
