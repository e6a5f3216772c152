// Supervision with an injected clock: retries wait on it, restarts back off on it. Worker
// threads stay real; only the troupe's own timers are driven by hand.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpert, type RunEvent } from '../../dist/src/index.js';
import { fixture, manualClock, until } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

describe('supervision', () => {
  it('retry waits its backoff on the clock, then succeeds', async () => {
    const clock = manualClock();
    const t = openTroupe({
      threads: 1,
      clock,
      random: () => 0,
      retryBackoffMs: 1000,
      experts: [defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave') })],
    });
    const events: RunEvent[] = [];
    const outcome = t.run(
      { analyze: () => [{ id: 'f', needs: 's', input: { op: 'failUntil', okAt: 2 } }] },
      null,
      {
        onEvent: (e) => events.push(e),
      },
    );
    await until(() => events.some((e) => e.type === 'subtask.retry'));
    expect(events.find((e) => e.type === 'subtask.retry')).toMatchObject({
      attempt: 2,
      delayMs: 500,
    }); // equal jitter, random 0
    clock.advance(499);
    expect(events.filter((e) => e.type === 'subtask.start')).toHaveLength(1);
    clock.advance(1);
    const done = await outcome;
    expect(done.status).toBe('done');
    expect(done.records[0]?.attempts).toBe(2);
  });

  it('faults past the intensity restart the expert: it backs off, probes again, and is ready', async () => {
    const clock = manualClock();
    const t = openTroupe({
      threads: 2,
      clock,
      random: () => 0,
      retryBackoffMs: 10,
      supervision: { intensity: 1, windowMs: 60_000, restartBackoffMs: 1000 },
      experts: [
        defineExpert({ name: 'crashy', skills: { s: 2 }, module: fixture('behave') }),
        defineExpert({ name: 'steady', skills: { s: 1 }, module: fixture('behave') }),
      ],
    });
    await until(() => t.experts().every((e) => e.state === 'ready'));
    const events: RunEvent[] = [];
    const outcome = t.run(
      {
        analyze: () => [
          { id: 'c1', needs: 's', complexity: 2, attempts: 1, input: { op: 'exit' } },
        ],
      },
      null,
      { onEvent: (e) => events.push(e) },
    );
    expect((await outcome).status).toBe('failed');
    const second = t.run(
      {
        analyze: () => [
          { id: 'c2', needs: 's', complexity: 2, attempts: 1, input: { op: 'exit' } },
        ],
      },
      null,
      {
        onEvent: (e) => events.push(e),
      },
    );
    expect((await second).status).toBe('failed');
    // Two crashes within the window, intensity 1: restarted.
    await until(() => t.experts()[0]?.state === 'backingOff');
    const crashy = t.experts()[0];
    expect(crashy?.restarts).toBe(1);
    expect(crashy?.faults.map((f) => f.code)).toEqual(['E_WORKER_CRASHED', 'E_WORKER_CRASHED']);
    expect(crashy?.reason).toMatch(/more than 1 faults within 60000 ms/);
    // While it backs off, work that only it can do waits; work another expert can do goes there.
    const meanwhile = await t.run(
      { analyze: () => [{ id: 'm', needs: 's', input: { op: 'echo', value: 1 } }] },
      null,
    );
    expect(meanwhile.contributions[0]?.expert).toBe('steady');
    clock.advance(1000);
    await until(() => t.experts()[0]?.state === 'ready');
    const after = await t.run(
      { analyze: () => [{ id: 'ok', needs: 's', complexity: 2, input: { op: 'echo', value: 2 } }] },
      null,
    );
    expect(after.contributions[0]).toMatchObject({ expert: 'crashy', output: 2 });
  });

  it('a probe that keeps failing retires the expert; runs that need it fail; revive brings it back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-probe-'));
    const flag = join(dir, 'ok');
    process.env.TROUPE_PROBE_FLAG = flag;
    try {
      const clock = manualClock();
      const t = openTroupe({
        threads: 1,
        clock,
        random: () => 0,
        supervision: { maxProbeFailures: 2, restartBackoffMs: 100 },
        experts: [defineExpert({ name: 'picky', skills: { p: 1 }, module: fixture('probe-flag') })],
      });
      await until(() => t.experts()[0]?.state === 'backingOff');
      clock.advance(100);
      await until(() => t.experts()[0]?.state === 'retired');
      const picky = t.experts()[0];
      expect(picky?.reason).toMatch(/retired: 2 probes failed in a row .*flag file .* is missing/);
      expect(picky?.probe).toMatchObject({ ok: false });
      const events: RunEvent[] = [];
      const outcome = await t.run({ analyze: () => [{ id: 'a', needs: 'p', input: 1 }] }, null, {
        onEvent: (e) => events.push(e),
      });
      expect(outcome.status).toBe('failed');
      if (outcome.status !== 'done') expect(outcome.error.code).toBe('E_EXPERT_RETIRED');
      expect(events.some((e) => e.type === 'expert.excluded' && e.expert === 'picky')).toBe(true);
      writeFileSync(flag, 'ok');
      t.revive('picky');
      await until(() => t.experts()[0]?.state === 'ready');
      const revived = await t.run({ analyze: () => [{ id: 'b', needs: 'p', input: 5 }] }, null);
      expect(revived).toMatchObject({ status: 'done', result: { b: 5 } });
      expect(() => t.revive('nobody')).toThrow(
        expect.objectContaining({ code: 'E_INVALID_OPTION' }),
      );
    } finally {
      delete process.env.TROUPE_PROBE_FLAG;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a need nobody meets is E_NO_EXPERT listing the skills on offer', async () => {
    const t = openTroupe({
      threads: 1,
      experts: [defineExpert({ name: 'w', skills: { s: 2 }, module: fixture('behave') })],
    });
    const outcome = await t.run({ analyze: () => [{ id: 'a', needs: 's', complexity: 3 }] }, null);
    expect(outcome.status).toBe('failed');
    if (outcome.status === 'done') return;
    expect(outcome.error.code).toBe('E_NO_EXPERT');
    expect(outcome.error.message).toBe(
      'no expert has the skill "s" at level 3 or above; on offer: s (w 2)',
    );
    expect(outcome.stage).toBe('identifying');
    // Every subtask still has its one terminal record, with the cause.
    expect(outcome.records).toHaveLength(1);
    expect(outcome.records[0]).toMatchObject({ status: 'cancelled', attempts: 0 });
    expect(outcome.records[0]?.error?.code).toBe('E_NO_EXPERT');
  });
});

describe('troupe.probed()', () => {
  it('resolves once every expert has been probed once, passed or failed', async () => {
    const t = openTroupe({
      threads: 2,
      supervision: { maxProbeFailures: 1 },
      experts: [
        defineExpert({ name: 'fine', skills: { s: 1 }, module: fixture('behave') }),
        defineExpert({ name: 'broken', skills: { s: 1 }, module: fixture('probe-fails') }),
      ],
    });
    expect(t.experts().every((e) => e.probe === undefined)).toBe(true);
    const infos = await t.probed();
    expect(Object.fromEntries(infos.map((e) => [e.name, e.probe?.ok]))).toEqual({
      fine: true,
      broken: false,
    });
    // Once probed, it resolves at once.
    await expect(t.probed()).resolves.toHaveLength(2);
  });
});
