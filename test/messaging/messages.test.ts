// Messages between experts: tell and ask by name and by skill, from the main thread and from
// worker threads (ctx), inline and heavy receivers, mailboxes, timeouts, deadlocks, progress and
// the run's blackboard.
import { afterEach, describe, expect, it } from 'vitest';
import {
  defineExpert,
  type ExpertDefinition,
  type Progress,
  type RunEvent,
  type Subtask,
  type TroupeOptions,
} from '../../dist/src/index.js';
import { fixture, manualClock, settle, until } from '../helpers.js';
import { closeTroupes, openTroupe } from '../runtime/helpers.js';

afterEach(closeTroupes);

const talker = fixture('talker');

function team(experts: ExpertDefinition[], options: Partial<TroupeOptions> = {}) {
  return openTroupe({ threads: 2, experts, ...options });
}

/**
 * Every expert probed and ready. A run waits only for the experts its subtasks need: a message
 * to another one still probing waits in its mailbox, and may be delivered after the run ends.
 */
const ready = (t: ReturnType<typeof team>) =>
  until(() => t.experts().every((e) => e.state === 'ready'));

const worker = (name = 'worker', skills: Record<string, 1 | 2 | 3 | 4 | 5> = { talk: 3 }) =>
  defineExpert({ name, skills, module: talker, concurrency: 2 });

/** An inline receiver that remembers what it got, and answers asks. */
function listener(name: string, skills: Record<string, 1 | 2 | 3 | 4 | 5> = { listen: 3 }) {
  const got: { msg: unknown; from: string; runId: string | undefined }[] = [];
  const expert = defineExpert({
    name,
    skills,
    module: talker,
    onMessage: (msg, from, ctx) => {
      got.push({ msg, from, runId: ctx.runId });
      return { heard: msg, by: name };
    },
  });
  return { expert, got };
}

const heavy = (name: string, skills: Record<string, 1 | 2 | 3 | 4 | 5> = { heavy: 3 }) =>
  defineExpert({ name, skills, module: talker, messages: 'heavy' });

const one = (input: unknown, extra: Partial<Subtask> = {}) => ({
  analyze: () => [{ id: 's', needs: 'talk', input, ...extra }],
});

describe('tell', () => {
  it('keeps order per sender and receiver: 10 000 tells from a worker to an inline receiver', async () => {
    const { expert, got } = listener('ear');
    const t = team([worker(), expert]);
    await ready(t);
    const outcome = await t.run(
      one({ op: 'sendNoWait', to: 'ear', count: 10_000, msg: { kind: 'n' } }),
      null,
    );
    expect(outcome.status).toBe('done');
    expect(got).toHaveLength(10_000);
    expect(got.map((g) => (g.msg as { seq: number }).seq)).toEqual(
      Array.from({ length: 10_000 }, (_, i) => i),
    );
    expect(got[0]).toMatchObject({ from: 'worker', runId: outcome.runId });
    expect(outcome.metrics.messages).toBe(10_000);
    expect(outcome.metrics.messagePairs).toEqual([{ from: 'worker', to: 'ear', count: 10_000 }]);
    expect(outcome.records[0]?.messages).toBe(10_000);
  });

  it('keeps order per sending subtask when several send at once, on both threads, to one receiver', async () => {
    const { expert, got } = listener('ear');
    const t = team([worker(), worker('other', { talk: 3 }), expert]);
    await ready(t);
    const outcome = await t.run(
      {
        analyze: () =>
          ['a', 'b', 'c', 'd'].map((id) => ({
            id,
            needs: 'talk',
            input: { op: 'sendNoWait', to: 'ear', count: 2_500, msg: { id } },
          })),
      },
      null,
    );
    expect(outcome.status).toBe('done');
    expect(got).toHaveLength(10_000);
    for (const id of ['a', 'b', 'c', 'd']) {
      const seqs = got
        .map((g) => g.msg as { id: string; seq: number })
        .filter((m) => m.id === id)
        .map((m) => m.seq);
      expect(seqs).toEqual(Array.from({ length: 2_500 }, (_, i) => i));
    }
  });

  it('keeps order at a heavy receiver: 10 000 tells from the main thread run one at a time on the pool', async () => {
    const t = team([heavy('mill')]);
    const sab = new SharedArrayBuffer(4 * 10_001);
    for (let seq = 0; seq < 10_000; seq++) t.tell('mill', { op: 'log', sab, seq });
    const view = new Int32Array(sab);
    await until(() => Atomics.load(view, 0) === 10_000, 60_000);
    expect(Array.from(view.subarray(1))).toEqual(Array.from({ length: 10_000 }, (_, i) => i));
    expect(t.stats().messages).toMatchObject({ sent: 10_000, failed: 0, waiting: 0 });
  });

  it('holds messages for an expert that is not ready yet, and delivers them in order once it is', async () => {
    const { expert, got } = listener('late');
    const t = team([expert]);
    expect(t.experts()[0]?.state).toBe('probing');
    t.tell('late', 1);
    t.tell('late', 2);
    expect(t.stats().messages.waiting).toBe(2);
    expect(got).toHaveLength(0);
    await until(() => got.length === 2);
    expect(got.map((g) => g.msg)).toEqual([1, 2]);
    expect(got[0]?.from).toBe('troupe');
  });

  it('a tell whose inline handler throws is reported as a run event, never dropped silently', async () => {
    const t = team([
      worker(),
      defineExpert({
        name: 'grumpy',
        skills: { x: 1 },
        module: talker,
        onMessage: () => {
          throw new Error('not today');
        },
      }),
    ]);
    // Ready first: a tell to an expert still probing waits in its mailbox and may outlive the run
    // (its failure then reaches onMessageFailed only).
    await ready(t);
    const events: RunEvent[] = [];
    const outcome = await t.run(one({ op: 'send', to: 'grumpy', count: 1, msg: {} }), null, {
      onEvent: (e) => events.push(e),
    });
    expect(outcome.status).toBe('done');
    const failed = events.find((e) => e.type === 'message.failed');
    expect(failed).toMatchObject({ from: 'worker', to: 'grumpy' });
    expect((failed as { error: { code: string; message: string } }).error.message).toMatch(
      /not today/,
    );
    expect(t.stats().messages.failed).toBe(1);
  });
});

describe('ask', () => {
  it('round trip from the main thread, to an inline and to a heavy receiver', async () => {
    const { expert } = listener('inline');
    const t = team([expert, heavy('remote')]);
    await expect(t.ask('inline', 'hi')).resolves.toEqual({ heard: 'hi', by: 'inline' });
    const answer = await t.ask<{ echo: string; from: string; thread: number }>('remote', {
      op: 'echo',
      value: 'hey',
    });
    expect(answer).toMatchObject({ echo: 'hey', from: 'troupe' });
    expect(answer.thread).toBeGreaterThan(0);
  });

  it('round trip from a worker, to an inline and to a heavy receiver; errors cross as TroupeErrors', async () => {
    const { expert } = listener('inline');
    const t = team([worker(), expert, heavy('remote')]);
    await ready(t);
    const outcome = await t.run(
      {
        analyze: () => [
          { id: 'a', needs: 'talk', input: { op: 'ask', to: 'inline', msg: 42 } },
          {
            id: 'b',
            needs: 'talk',
            input: { op: 'ask', to: 'remote', msg: { op: 'echo', value: 7 } },
          },
        ],
      },
      null,
    );
    expect(outcome.status).toBe('done');
    const out = Object.fromEntries(outcome.contributions.map((c) => [c.subtask, c.output]));
    expect(out.a).toEqual({ answer: { heard: 42, by: 'inline' } });
    expect(out.b).toMatchObject({ answer: { echo: 7, from: 'worker' } });
    // The heavy handler's error reaches the asking handler as a TroupeError with the remote
    // message; uncaught there, it fails the subtask.
    const refused = await t.run(
      one({ op: 'ask', to: 'remote', msg: { op: 'throw', why: 'no' } }, { attempts: 1 }),
      null,
    );
    expect(refused.records[0]?.error?.code).toBe('E_TASK_FAILED');
    expect(refused.records[0]?.error?.message).toMatch(/heavy handler refused: no/);
  });

  it('by skill: the least-loaded qualified expert that takes messages answers', async () => {
    const low = listener('low', { vote: 2 });
    const high = listener('high', { vote: 4 });
    const t = team([
      low.expert,
      high.expert,
      defineExpert({ name: 'deaf', skills: { vote: 5 }, module: talker }),
    ]);
    await until(() => t.experts().every((e) => e.state === 'ready'));
    // Equal load: the higher level wins; the deaf expert (no onMessage) is never picked.
    await expect(t.ask({ skill: 'vote' }, 'a')).resolves.toMatchObject({ by: 'high' });
    await expect(t.ask({ skill: 'vote', level: 5 }, 'b')).rejects.toMatchObject({
      code: 'E_NO_RECIPIENT',
    });
    expect(() => t.tell({ skill: 'vote', level: 9 as 5 }, 'c')).toThrow(/level/);
  });

  it('an inline handler can ask another expert in turn', async () => {
    const { expert } = listener('inner');
    const t = team([
      expert,
      defineExpert({
        name: 'outer',
        skills: { o: 1 },
        module: talker,
        onMessage: async (msg, _from, ctx) => ({ relayed: await ctx.ask('inner', msg) }),
      }),
    ]);
    await expect(t.ask('outer', 'x')).resolves.toEqual({ relayed: { heard: 'x', by: 'inner' } });
  });

  it('times out with E_ASK_TIMEOUT', async () => {
    const t = team([
      defineExpert({
        name: 'silent',
        skills: { s: 1 },
        module: talker,
        onMessage: () => new Promise(() => {}),
      }),
    ]);
    const result = await settle(t.ask('silent', 'anyone?', { timeoutMs: 30 }));
    expect(result).toMatchObject({ ok: false, code: 'E_ASK_TIMEOUT' });
    expect(String((result as { error: Error }).error.message)).toMatch(/within 30 ms/);
  });

  it('unknown, deaf and retired recipients are E_NO_RECIPIENT, never a silent drop', async () => {
    const t = team(
      [
        listener('ok').expert,
        defineExpert({ name: 'deaf', skills: { s: 1 }, module: talker }),
        defineExpert({
          name: 'gone',
          skills: { s: 1 },
          module: fixture('probe-fails'),
          onMessage: () => 'never',
        }),
      ],
      { supervision: { maxProbeFailures: 1 } },
    );
    expect(() => t.tell('nobody', 1)).toThrow(expect.objectContaining({ code: 'E_NO_RECIPIENT' }));
    expect(() => t.tell('nobody', 1)).toThrow(
      /no expert is named "nobody"; experts: ok, deaf, gone/,
    );
    await expect(t.ask('deaf', 1)).rejects.toMatchObject({
      code: 'E_NO_RECIPIENT',
      message: expect.stringMatching(/takes no messages/),
    });
    await until(() => t.experts().find((e) => e.name === 'gone')?.state === 'retired');
    await expect(t.ask('gone', 1)).rejects.toMatchObject({
      code: 'E_NO_RECIPIENT',
      message: expect.stringMatching(/retired/),
    });
    expect(() => t.tell(42 as unknown as string, 1)).toThrow(
      expect.objectContaining({ code: 'E_INVALID_OPTION' }),
    );
  });

  it('a message waiting for an expert that then retires fails E_NO_RECIPIENT', async () => {
    const t = team(
      [
        defineExpert({
          name: 'doomed',
          skills: { s: 1 },
          module: fixture('probe-fails'),
          onMessage: () => 'never',
        }),
      ],
      { supervision: { maxProbeFailures: 1 } },
    );
    const answer = settle(t.ask('doomed', 'are you there?'));
    expect(t.stats().messages.waiting).toBe(1);
    expect(await answer).toMatchObject({ ok: false, code: 'E_NO_RECIPIENT' });
    expect(String(((await answer) as { error: Error }).error.message)).toMatch(/retired before/);
  });

  it('a heavy recipient that crashes mid-ask fails the ask E_WORKER_CRASHED; nothing hangs', async () => {
    const t = team([heavy('fragile'), listener('fine').expert]);
    await expect(t.ask('fragile', { op: 'crash' })).rejects.toMatchObject({
      code: 'E_WORKER_CRASHED',
    });
    // The expert takes the next message on a new thread.
    await expect(t.ask('fragile', { op: 'echo', value: 1 })).resolves.toMatchObject({ echo: 1 });
    expect(t.experts().find((e) => e.name === 'fragile')?.faults[0]?.code).toBe('E_WORKER_CRASHED');
  });

  it('an expert restarted between two messages gets the second once it is ready again', async () => {
    const clock = manualClock();
    const { expert, got } = listener('phoenix', { s: 1 });
    const t = team([expert], {
      clock,
      random: () => 0,
      supervision: { intensity: 1, windowMs: 60_000, restartBackoffMs: 1000 },
    });
    await until(() => t.experts()[0]?.state === 'ready');
    t.tell('phoenix', 'first');
    expect(got.map((g) => g.msg)).toEqual(['first']);
    // Two crashes of its subtasks pass its intensity: it restarts and backs off.
    const crash = { analyze: () => [{ id: 'c', needs: 's', attempts: 1, input: { op: 'exit' } }] };
    await t.run(crash, null);
    await t.run(crash, null);
    await until(() => t.experts()[0]?.state === 'backingOff');
    t.tell('phoenix', 'second');
    expect(got).toHaveLength(1);
    expect(t.stats().messages.waiting).toBe(1);
    clock.advance(1000);
    await until(() => got.length === 2);
    expect(got.map((g) => g.msg)).toEqual(['first', 'second']);
    expect(t.experts()[0]?.restarts).toBe(1);
  });

  it('a cycle of asks that holds every thread fails E_ASK_DEADLOCK at once, not at the timeout', async () => {
    const sab = new SharedArrayBuffer(4);
    const t = team(
      [
        worker('a', { ta: 1 }),
        worker('b', { tb: 1 }),
        heavy('ha', { x: 1 }),
        heavy('hb', { y: 1 }),
      ],
      {
        askTimeoutMs: 600_000,
      },
    );
    const outcome = await t.run(
      {
        analyze: () => [
          {
            id: 'left',
            needs: 'ta',
            attempts: 1,
            input: { op: 'barrierAsk', sab, parties: 2, to: 'hb', msg: { op: 'echo', value: 1 } },
          },
          {
            id: 'right',
            needs: 'tb',
            attempts: 1,
            input: { op: 'barrierAsk', sab, parties: 2, to: 'ha', msg: { op: 'echo', value: 2 } },
          },
        ],
      },
      null,
    );
    // The asks' timeout is 10 minutes: only the deadlock check can end them within the test's timeout.
    expect(outcome.status).toBe('failed');
    const codes = outcome.records.map((r) => r.errors[0]?.message ?? '');
    expect(codes.some((m) => /cycle of asks holds every thread/.test(m))).toBe(true);
    expect(t.stats().messages.failed).toBeGreaterThanOrEqual(1);
  });
});

describe('deadlocks with threads of an expert of its own (resourceLimits)', () => {
  const own = { maxOldGenerationSizeMb: 64 };

  it('asks that hold every shared thread, to a heavy expert on threads of its own, are answered', async () => {
    const sab = new SharedArrayBuffer(4);
    const t = team(
      [
        worker('a', { ta: 1 }),
        defineExpert({
          name: 'h',
          skills: { x: 1 },
          module: talker,
          messages: 'heavy',
          resourceLimits: own,
        }),
      ],
      { askTimeoutMs: 600_000 },
    );
    const ask = (id: string, value: number) => ({
      id,
      needs: 'ta',
      attempts: 1,
      input: { op: 'barrierAsk', sab, parties: 2, to: 'h', msg: { op: 'echo', value } },
    });
    const outcome = await t.run({ analyze: () => [ask('one', 1), ask('two', 2)] }, null);
    // Before, the check counted the troupe's threads only: E_ASK_DEADLOCK, though h was free.
    expect(outcome.status).toBe('done');
    const result =
      outcome.status === 'done'
        ? (outcome.result as Record<string, { answer: { echo: number } }>)
        : {};
    expect([result.one?.answer.echo, result.two?.answer.echo]).toEqual([1, 2]);
  });

  it("a cycle within an expert's own threads fails E_ASK_DEADLOCK at once, not at the timeout", async () => {
    const t = team(
      [
        defineExpert({
          name: 'self',
          skills: { s: 1 },
          module: talker,
          messages: 'heavy',
          resourceLimits: own,
        }),
      ],
      { askTimeoutMs: 600_000 },
    );
    // Its one thread runs the subtask, which asks its own heavy handler: nothing can run it.
    const outcome = await t.run(
      {
        analyze: () => [
          {
            id: 'loop',
            needs: 's',
            attempts: 1,
            input: { op: 'ask', to: 'self', msg: { op: 'echo', value: 1 } },
          },
        ],
      },
      null,
    );
    expect(outcome.status).toBe('failed');
    expect(outcome.records[0]?.errors[0]?.message).toMatch(
      /cycle of asks holds every thread \(1\)/,
    );
  });
});

describe('edge cases', () => {
  it('an inline handler that asks before its first await is not mistaken for a deadlock (1 thread)', async () => {
    const { expert } = listener('db', { db: 1 });
    const t = team(
      [
        worker(),
        expert,
        defineExpert({
          name: 'coord',
          skills: { c: 1 },
          module: talker,
          onMessage: (msg, _from, ctx) => ctx.ask('db', msg),
        }),
      ],
      { threads: 1 },
    );
    const outcome = await t.run(one({ op: 'ask', to: 'coord', msg: 'q' }), null);
    expect(outcome.status).toBe('done');
    expect(outcome.contributions[0]?.output).toEqual({ answer: { heard: 'q', by: 'db' } });
  });

  it('a heavy receiver stays one message at a time while a timed-out handler runs on in its grace period', async () => {
    const t = team([heavy('mill')], { cancelGraceMs: 60_000 });
    await until(() => t.experts()[0]?.state === 'ready');
    const sab = new SharedArrayBuffer(64);
    const view = new Int32Array(sab);
    const first = settle(
      t.ask('mill', { op: 'spinLog', sab, ms: 300, start: 1, end: 2 }, { timeoutMs: 20 }),
    );
    const second = t.ask('mill', { op: 'spinLog', sab, ms: 0, start: 3, end: 4 });
    expect(await first).toMatchObject({ ok: false, code: 'E_ASK_TIMEOUT' });
    await expect(second).resolves.toBe(4);
    expect(Array.from(view.subarray(1, 1 + Atomics.load(view, 0)))).toEqual([1, 2, 3, 4]);
  });

  it('a heavy expert whose module has no onMessage export fails its probe and retires', async () => {
    const t = team(
      [
        defineExpert({
          name: 'mute',
          skills: { s: 1 },
          module: fixture('echo'),
          messages: 'heavy',
        }),
      ],
      { supervision: { maxProbeFailures: 1 } },
    );
    await until(() => t.experts()[0]?.state === 'retired');
    expect(t.experts()[0]?.probe?.error).toMatch(/no onMessage export/);
    await expect(t.ask('mute', 1)).rejects.toMatchObject({ code: 'E_NO_RECIPIENT' });
  });

  it('a tell from the main thread that no one takes reaches onMessageFailed', async () => {
    const failures: { from: string; to: string; error: { message: string } }[] = [];
    const t = team(
      [
        defineExpert({
          name: 'grumpy',
          skills: { x: 1 },
          module: talker,
          onMessage: () => {
            throw new Error('go away');
          },
        }),
      ],
      { onMessageFailed: (f) => failures.push(f) },
    );
    t.tell('grumpy', 'hello');
    await until(() => failures.length === 1);
    expect(failures[0]).toMatchObject({ from: 'troupe', to: 'grumpy', runId: undefined });
    expect(failures[0]?.error.message).toMatch(/go away/);
  });
});

describe('ctx on worker threads', () => {
  it('progress is monotonic per subtask and feeds onProgress and the event stream', async () => {
    const t = team([worker()]);
    const seen: Progress[] = [];
    const events: RunEvent[] = [];
    const outcome = await t.run(
      {
        analyze: () => [
          { id: 'p', needs: 'talk', input: { op: 'progress', steps: [0.1, 0.5, 0.3, 0.9, 1] } },
          { id: 'q', needs: 'talk', input: { op: 'echo', value: 1 } },
        ],
      },
      null,
      { onProgress: (p) => seen.push(p), onEvent: (e) => events.push(e) },
    );
    expect(outcome.status).toBe('done');
    expect(seen.map((p) => p.fraction)).toEqual([0.1, 0.5, 0.9, 1]);
    expect(seen.every((p) => p.id === 'p' && p.total === 2)).toBe(true);
    expect(seen[1]?.note).toBe('at 0.5');
    const overall = seen.map((p) => p.overall);
    expect([...overall].sort((a, b) => a - b)).toEqual(overall);
    expect(events.filter((e) => e.type === 'subtask.progress')).toHaveLength(4);
  });

  it('the blackboard is shared within a run and bounded by maxBlackboardBytes (E_TOO_LARGE)', async () => {
    const t = team([worker()], { maxBlackboardBytes: 1024 });
    const outcome = await t.run(
      {
        analyze: () => [
          { id: 'put', needs: 'talk', input: { op: 'share', key: 'k', value: { deep: [1, 2] } } },
          { id: 'get', needs: 'talk', after: ['put'], input: { op: 'lookup', key: 'k' } },
          { id: 'miss', needs: 'talk', input: { op: 'lookup', key: 'nope' } },
        ],
      },
      null,
    );
    const out = Object.fromEntries(outcome.contributions.map((c) => [c.subtask, c.output]));
    expect(out.get).toEqual({ value: { deep: [1, 2] } });
    expect(out.miss).toEqual({ value: undefined });
    const tooBig = await t.run(
      one({ op: 'shareBytes', key: 'b', size: 4096 }, { attempts: 1 }),
      null,
    );
    expect(tooBig.status).toBe('failed');
    expect(tooBig.records[0]?.error?.code).toBe('E_TASK_FAILED');
    expect(tooBig.records[0]?.error?.message).toMatch(
      /past its limit of 1024 \(maxBlackboardBytes\)/,
    );
    // Another run has its own blackboard.
    const other = await t.run(one({ op: 'lookup', key: 'k' }), null);
    expect(other.contributions[0]?.output).toEqual({ value: undefined });
  });
});
