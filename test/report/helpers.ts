// What the report tests share: a string that would run script if the page took it as markup,
// and the troupe they run (two experts on 2 threads: `alpha` for skill a, `beta` for skill b
// with 2 attempts).
import { createTroupe, defineExpert, type Troupe } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';

export const HOSTILE =
  '</script><script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2">';

export const reportTroupe = (): Troupe =>
  createTroupe({
    threads: 2,
    retryBackoffMs: 1,
    experts: [
      defineExpert({ name: 'alpha', skills: { a: 1 }, module: fixture('behave'), concurrency: 2 }),
      defineExpert({ name: 'beta', skills: { b: 1 }, module: fixture('behave'), attempts: 2 }),
    ],
  });
