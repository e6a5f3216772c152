// What inspecting a run costs in messages: one troupe (one expert, concurrency 2, 2 threads),
// a warm-up run, then one run of N `echo` subtasks (a 100-character input each) inspected
// through `createInspector` from @statelyai/inspect with an adapter that keeps each message as
// the relay sends it (JSON). Prints the messages, their bytes, the largest, and the run's wall
// time, inspected and not, alternating, R times each.
//
//   npm run build && node bench/inspect/messages.mjs [N=10000] [R=2]
import { createInspector } from '@statelyai/inspect';
import { createTroupe, defineExpert } from '../../dist/src/index.js';

const [n = '10000', r = '2'] = process.argv.slice(2);
const N = Number(n);
const module = new URL('../../test/fixtures/behave.mjs', import.meta.url);
const plan = {
  analyze: () =>
    Array.from({ length: N }, (_, i) => ({
      id: `s${i}`,
      needs: 'work',
      input: { op: 'echo', value: 'x'.repeat(100) },
    })),
};
const settle = () => new Promise((resolve) => setTimeout(resolve, 100));
for (let round = 0; round < Number(r); round++) {
  for (const inspected of [false, true]) {
    const sent = [];
    const inspector = createInspector({ send: (event) => sent.push(JSON.stringify(event)) });
    const troupe = createTroupe({
      threads: 2,
      experts: [defineExpert({ name: 'worker', skills: { work: 1 }, module, concurrency: 2 })],
      ...(inspected ? { inspect: inspector } : {}),
    });
    await troupe.run(plan, null);
    await settle();
    sent.length = 0;
    const t0 = performance.now();
    const outcome = await troupe.run(plan, null);
    const ms = performance.now() - t0;
    await settle();
    let bytes = 0;
    let largest = 0;
    for (const message of sent) {
      bytes += message.length;
      largest = Math.max(largest, message.length);
    }
    console.log(
      JSON.stringify({
        inspected,
        subtasks: N,
        status: outcome.status,
        wallMs: Math.round(ms),
        messages: sent.length,
        bytes,
        largest,
      }),
    );
    await troupe.close();
  }
}
