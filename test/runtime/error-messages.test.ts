// Error messages a user can act on: an expert that retired says why (its last probe failure),
// whether it retired while the run waited for it or before; nothing is said twice.
import { afterEach, describe, expect, it } from 'vitest';
import { defineExpert } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';
import { closeTroupes, openTroupe } from './helpers.js';

afterEach(closeTroupes);

const gpuTroupe = () =>
  openTroupe({
    threads: 1,
    supervision: { restartBackoffMs: 1, maxRestartBackoffMs: 2, maxProbeFailures: 2 },
    experts: [
      defineExpert({ name: 'gpu', skills: { render: 1 }, module: fixture('probe-fails') }),
      defineExpert({ name: 'cpu', skills: { other: 1 }, module: fixture('echo') }),
    ],
  });

const render = { analyze: () => [{ id: 'frame', needs: 'render' }] };
const why = 'gpu: retired: 2 probes failed in a row (last: dependency missing)';

describe('E_EXPERT_RETIRED', () => {
  it('says why, once, for a run that waited while the expert retired and for one after', async () => {
    const t = gpuTroupe();
    const waited = await t.run(render, null);
    expect(waited).toMatchObject({ status: 'failed', error: { code: 'E_EXPERT_RETIRED' } });
    if (waited.status !== 'failed') return;
    expect(waited.error.message).toBe(`every expert with "render" at level 1 is retired (${why})`);
    const after = await t.run(render, null);
    if (after.status !== 'failed') throw new Error('expected a failed run');
    expect(after.error.message).toBe(`every expert with "render" at level 1 is retired (${why})`);
    const [gpu] = t.experts();
    expect(gpu?.probe).toEqual({ ok: false, error: 'dependency missing' });
    expect(gpu?.reason).toBe('retired: 2 probes failed in a row (last: dependency missing)');
    // No message says the expert's name and "probe failed" twice.
    for (const text of [waited.error.message, after.error.message, gpu?.reason ?? ''])
      expect(text).not.toMatch(/probe failed: .*probe failed:|gpu: .*gpu: .*gpu:/);
  });

  it('a message for a retired expert quotes the same reason', async () => {
    const t = openTroupe({
      threads: 1,
      supervision: { restartBackoffMs: 1, maxRestartBackoffMs: 2, maxProbeFailures: 1 },
      experts: [
        defineExpert({
          name: 'gpu',
          skills: { render: 1 },
          module: fixture('probe-fails'),
          onMessage: () => 'never',
        }),
      ],
    });
    await t.probed();
    await expect(t.ask('gpu', 1)).rejects.toThrow(
      'ask(to): gpu is retired: 1 probes failed in a row (last: dependency missing)',
    );
  });
});
