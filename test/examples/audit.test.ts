// The main job runs as a user runs it: `npm start` (audit.mjs) in a child process, here on the
// test fixtures folder (small and committed), with --json and --compare-sequential.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const audit = fileURLToPath(new URL('../../examples/folder-audit/audit.mjs', import.meta.url));
const dir = fileURLToPath(new URL('../fixtures/', import.meta.url));

describe('examples/folder-audit', () => {
  it('audits a folder: totals, one row per file with every expert’s part, who did what, quality', async () => {
    const { stdout } = await run(
      process.execPath,
      [audit, '--dir', dir, '--threads', '2', '--json', '--compare-sequential'],
      {
        timeout: 60_000,
      },
    );
    const report = JSON.parse(stdout);
    expect(report.status).toBe('done');
    expect(report.quality).toEqual({ complete: true });
    const { result } = report;
    expect(result.totals.files).toBe(result.rows.length);
    expect(result.totals.files).toBeGreaterThan(5);
    for (const row of result.rows) {
      expect(row.sha256).toMatch(/^[0-9a-f]{64}$/);
      expect(row.gzip).toBeGreaterThan(0);
      expect(row.lines).toBeGreaterThan(0);
    }
    expect(Object.keys(result.whoDidWhat).sort()).toEqual(['analyst', 'compressor', 'hasher']);
    expect(report.metrics.subtasks).toBe(3 * result.totals.files);
    expect(report.sequential.factor).toBeGreaterThan(0);
  });

  it('--warm runs the audit once untimed first, on both sides, and says so', async () => {
    const { stdout } = await run(
      process.execPath,
      [audit, '--dir', dir, '--threads', '2', '--compare-sequential', '--warm'],
      { timeout: 60_000 },
    );
    expect(stdout).toMatch(/^Warm-up run \(untimed above\): \d+ ms/m);
    expect(stdout).toMatch(/sequential ÷ troupe wall, 2 threads; both warmed up first\)/);
    const json = await run(process.execPath, [audit, '--dir', dir, '--json', '--warm'], {
      timeout: 60_000,
    });
    const report = JSON.parse(json.stdout);
    expect(report.status).toBe('done');
    expect(report.warmMs).toBeGreaterThan(0);
  });

  it('bad flags exit 2 with a message', async () => {
    await expect(run(process.execPath, [audit, '--max-files', 'many'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--max-files: expected a positive integer, got "many"'),
    });
  });
});
