// The messaging example runs as a user runs it, in a child process: hunters ask the referee for
// work and report through ask; the sieve shares the small primes on the blackboard.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const primes = fileURLToPath(new URL('../../examples/primes/primes.mjs', import.meta.url));

describe('examples/primes', () => {
  it('counts the primes below 2 000 000 (148 933) with experts that cooperate through ask and the blackboard', async () => {
    const { stdout } = await run(
      process.execPath,
      [primes, '--limit', '2000000', '--threads', '2', '--json'],
      { timeout: 60_000 },
    );
    const report = JSON.parse(stdout);
    expect(report.status).toBe('done');
    expect(report.result.primes).toBe(148_933);
    expect(report.quality).toEqual({ agreed: true });
    // Every stretch was asked for, plus one last ask per hunter that got nothing back.
    expect(report.metrics.messages).toBe(report.result.stretches + 2);
    expect(report.metrics.messagePairs).toEqual([
      { from: 'hunter', to: 'referee', count: report.metrics.messages },
    ]);
  });

  it('bad flags exit 2 with a message', async () => {
    await expect(run(process.execPath, [primes, '--limit', 'lots'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--limit: expected an integer ≥ 2, got "lots"'),
    });
  });
});
