/**
 * The experts of the distributed suite, for its coordinators and its `troupe worker` processes
 * alike (a worker loads this module's compiled form: `experts`).
 */
import { defineExpert } from '../../src/actors/experts.js';
import { workload } from '../paths.js';

const spin = workload('spin');

export const experts = [
  // Many at once: throughput and the factor.
  defineExpert({ name: 'cpu', module: spin, skills: { cpu: 1 }, concurrency: 64 }),
  // One at a time: each subtask's trip alone.
  defineExpert({ name: 'one', module: spin, skills: { one: 1 }, concurrency: 1 }),
];
