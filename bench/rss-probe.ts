/**
 * One idle pool in a fresh process, for the RSS comparison: `node rss-probe.js troupe|troupe-runtime|piscina`.
 * Starts 2 threads, runs one task on each so both are up, lets the process settle, prints RSS.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { workload } from './paths.js';

const kind = process.argv[2];
const threads = 2;
const gc = (globalThis as { gc?: () => void }).gc;

async function main(): Promise<void> {
  const noop = workload('noop').href;
  let close: () => Promise<void>;
  if (kind === 'troupe') {
    const { createPool } = await import('../src/index.js');
    const pool = createPool({ threads, modules: { noop } });
    await Promise.all([pool.run('noop', 1), pool.run('noop', 2)]);
    close = () => pool.destroy();
  } else if (kind === 'troupe-runtime') {
    const { createTroupe, defineExpert } = await import('../src/index.js');
    const troupe = createTroupe({
      threads,
      experts: [
        defineExpert({ name: 'noop', skills: { nothing: 1 }, module: noop, concurrency: 2 }),
      ],
    });
    const plan = {
      analyze: () => [0, 1].map((i) => ({ id: `n${i}`, needs: 'nothing', input: i })),
    };
    const outcome = await troupe.run(plan, null);
    if (outcome.status !== 'done') throw new Error(`rss-probe run ended ${outcome.status}`);
    close = () => troupe.close({ force: true });
  } else if (kind === 'piscina') {
    const { Piscina } = await import('piscina');
    const pool = new Piscina({ filename: noop, minThreads: threads, maxThreads: threads });
    await Promise.all([pool.run(1), pool.run(2)]);
    close = () => pool.destroy();
  } else {
    throw new Error(`usage: rss-probe.js troupe|troupe-runtime|piscina (got ${kind})`);
  }
  await sleep(300);
  gc?.();
  await sleep(100);
  process.stdout.write(`${JSON.stringify({ kind, rss: process.memoryUsage().rss })}\n`);
  await close();
}

await main();
