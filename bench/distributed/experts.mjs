// The experts of bench/distributed/factor.mjs, for its coordinators and its workers alike.
import { defineExpert } from '../../dist/src/index.js';

export const experts = [
  defineExpert({
    name: 'cpu',
    module: new URL('./spin.mjs', import.meta.url),
    skills: { cpu: 1 },
    concurrency: 64,
  }),
];
