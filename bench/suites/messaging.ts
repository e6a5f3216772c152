/**
 * The messaging suite: troupe's `tell` and `ask` against plain XState messaging, `ctx.ask` from a
 * worker thread against a raw postMessage round trip and Comlink alone, and the cost of having
 * `ctx` available to tasks that never use it.
 */
import { MessageChannel, Worker } from 'node:worker_threads';
import { expose } from 'comlink';
import { createActor, sendParent, sendTo, setup } from 'xstate';
import { defineExpert } from '../../src/actors/experts.js';
import { createPool } from '../../src/pool/pool.js';
import { createTroupe } from '../../src/troupe.js';
import { interleaved, perRound, type Samples, spread } from '../harness.js';
import { workload } from '../paths.js';
import { range, throughputCase } from '../shared.js';
import type { CaseResult, SuiteOptions } from '../types.js';

/** Two actors: the parent sends each `tick` on to its child, one way. */
function oneWay(): { tick: () => void; count: () => number } {
  let received = 0;
  const child = setup({ types: { events: {} as { type: 'msg' } } }).createMachine({
    on: {
      msg: {
        actions: () => {
          received++;
        },
      },
    },
  });
  const parent = setup({
    types: { events: {} as { type: 'tick' } },
    actors: { child },
  }).createMachine({
    invoke: { id: 'child', src: 'child' },
    on: { tick: { actions: sendTo('child', { type: 'msg' }) } },
  });
  const actor = createActor(parent).start();
  return { tick: () => actor.send({ type: 'tick' }), count: () => received };
}

/** Parent ↔ child ping-pong: n round trips, resolved when the last pong arrives. */
function pingPong(): (n: number) => Promise<void> {
  let left = 0;
  let done: () => void = () => {};
  const child = setup({ types: { events: {} as { type: 'ping' } } }).createMachine({
    on: { ping: { actions: sendParent({ type: 'pong' }) } },
  });
  const parent = setup({
    types: { events: {} as { type: 'start' } | { type: 'pong' } },
    actors: { child },
  }).createMachine({
    invoke: { id: 'child', src: 'child' },
    on: {
      start: { actions: sendTo('child', { type: 'ping' }) },
      pong: [
        { guard: () => --left > 0, actions: sendTo('child', { type: 'ping' }) },
        { actions: () => done() },
      ],
    },
  });
  const actor = createActor(parent).start();
  return (n) =>
    new Promise<void>((resolve) => {
      left = n;
      done = resolve;
      actor.send({ type: 'start' });
    });
}

/** A plain worker that measures raw postMessage and Comlink round trips to echoes here. */
async function roundTripWorker() {
  const worker = new Worker(workload('rtt-worker'));
  const raw = new MessageChannel();
  const comlink = new MessageChannel();
  raw.port1.on('message', (value) => raw.port1.postMessage(value));
  expose({ echo: (value: unknown) => value }, comlink.port1 as never);
  worker.postMessage({ raw: raw.port2, comlink: comlink.port2 }, [raw.port2, comlink.port2]);
  await new Promise((resolve) => worker.once('message', resolve));
  const measure = (kind: 'raw' | 'comlink', n: number) =>
    new Promise<number>((resolve) => {
      worker.once('message', resolve);
      worker.postMessage({ kind, n });
    });
  return {
    measure,
    close: async () => {
      raw.port1.close();
      comlink.port1.close();
      await worker.terminate();
    },
  };
}

export async function messagingSuite(options: SuiteOptions): Promise<CaseResult[]> {
  const { threads, quick } = options;
  // Small differences need many rounds.
  const rounds = Math.max(options.rounds, quick ? 3 : 15);
  const noop = workload('noop');
  let heard = 0;
  const troupe = createTroupe({
    threads,
    experts: [
      defineExpert({
        name: 'echo',
        skills: { echo: 1 },
        module: noop,
        onMessage: (msg) => {
          heard++;
          return msg;
        },
      }),
      defineExpert({ name: 'asker', skills: { ask: 1 }, module: workload('asker') }),
    ],
  });
  const withContext = createPool({ threads, modules: { noop: { url: noop, batch: 1 } } });
  const withoutContext = createPool({
    threads,
    context: false,
    modules: { noop: { url: noop, batch: 1 } },
  });
  const rtt = await roundTripWorker();
  // Measure delivery, not mailboxes: every expert must have passed its probe.
  const probed = await troupe.probed();
  if (!probed.every((e) => e.probe?.ok === true))
    throw new Error('bench: an expert of the messaging suite failed its probe');
  const results: CaseResult[] = [];
  try {
    // --- tell: one way, main thread → inline receiver -----------------------------------------
    {
      const n = quick ? 5_000 : 50_000;
      const xs = oneWay();
      const samples = await interleaved(
        [
          {
            name: 'troupe.tell',
            run: async () => {
              const before = heard;
              for (let i = 0; i < n; i++) troupe.tell('echo', i);
              if (heard - before !== n) throw new Error('bench: tells went missing');
            },
          },
          {
            name: 'xstate sendTo',
            run: async () => {
              const before = xs.count();
              for (let i = 0; i < n; i++) xs.tick();
              if (xs.count() - before !== n) throw new Error('bench: sendTo lost messages');
            },
          },
        ],
        rounds,
      );
      results.push(
        throughputCase({
          name: `tell, ${n} one-way messages, ${rounds} rounds (messages/s)`,
          n,
          samples,
          subject: 'troupe.tell',
          baseline: 'xstate sendTo',
          label: 'troupe.tell ÷ plain one-way sendTo, throughput',
          target: '≥ 0.50',
          pass: (ratio) => ratio.median >= 0.5,
        }),
      );
    }

    // --- ask: main thread → inline receiver, one at a time ------------------------------------
    {
      const n = quick ? 2_000 : 20_000;
      const pp = pingPong();
      const samples = await interleaved(
        [
          {
            name: 'troupe.ask',
            run: async () => {
              for (let i = 0; i < n; i++) await troupe.ask('echo', i);
            },
          },
          { name: 'xstate ping-pong', run: () => pp(n) },
        ],
        rounds,
      );
      results.push(
        throughputCase({
          name: `ask from the main thread, ${n} round trips one at a time, ${rounds} rounds (round trips/s)`,
          n,
          samples,
          subject: 'troupe.ask',
          baseline: 'xstate ping-pong',
          label: 'troupe.ask ÷ parent↔child sendTo ping-pong, throughput',
          target: '≥ 0.50',
          pass: (ratio) => ratio.median >= 0.5,
        }),
      );
    }

    // --- ctx.ask: worker → inline receiver on the main thread, p50 ----------------------------
    {
      const n = quick ? 300 : 2_000;
      const plan = {
        analyze: () => [{ id: 'ask', needs: 'ask', input: { n, to: 'echo' } }],
      };
      const variants: Record<string, () => Promise<number>> = {
        'troupe ctx.ask': async () => {
          const outcome = await troupe.run(plan, null);
          if (outcome.status !== 'done') throw new Error(`bench run ended ${outcome.status}`);
          return (outcome.result as Record<string, number>).ask as number;
        },
        'raw postMessage': () => rtt.measure('raw', n),
        'comlink alone': () => rtt.measure('comlink', n),
      };
      const names = Object.keys(variants);
      for (const name of names) await (variants[name] as () => Promise<number>)(); // warm-up
      const samples: Samples = Object.fromEntries(names.map((k) => [k, [] as number[]]));
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < names.length; i++) {
          const name = names[(round + i) % names.length] as string;
          samples[name]?.push(await (variants[name] as () => Promise<number>)());
        }
        process.stderr.write('.');
      }
      const ratio = perRound(
        samples['troupe ctx.ask'] as number[],
        samples['raw postMessage'] as number[],
        (t, r) => t / r,
      );
      const comlink = perRound(
        samples['comlink alone'] as number[],
        samples['raw postMessage'] as number[],
        (c, r) => c / r,
      );
      results.push({
        name: `ctx.ask from a worker to an inline receiver, p50 of ${n} round trips, ${rounds} rounds (µs)`,
        medians: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, spread(v).median])),
        comparisons: [
          {
            label: 'troupe ctx.ask p50 ÷ raw postMessage p50',
            spread: ratio,
            target: '≤ 2.50',
            pass: ratio.median <= 2.5,
          },
          { label: 'Comlink alone p50 ÷ raw postMessage p50', spread: comlink },
        ],
        samples,
      });
    }

    // --- ctx available but unused: no-op throughput -------------------------------------------
    {
      const n = quick ? 2_000 : 10_000;
      const samples = await interleaved(
        [
          {
            name: 'ctx channel',
            run: () => Promise.all(range(n).map((i) => withContext.run('noop', i))),
          },
          {
            name: 'no ctx channel',
            run: () => Promise.all(range(n).map((i) => withoutContext.run('noop', i))),
          },
        ],
        rounds,
      );
      results.push(
        throughputCase({
          name: `no-op tasks, ${n} in flight, ctx available but unused, ${rounds} rounds (tasks/s)`,
          n,
          samples,
          subject: 'ctx channel',
          baseline: 'no ctx channel',
          label: 'with ÷ without the context channel, throughput',
          target: 'min–max contains 1.00',
          pass: (ratio) => ratio.min <= 1 && ratio.max >= 1,
        }),
      );
    }
  } finally {
    await rtt.close();
    await Promise.all([troupe.close(), withContext.close(), withoutContext.close()]);
  }
  return results;
}
