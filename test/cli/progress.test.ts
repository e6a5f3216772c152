// The progress line of `troupe run` shows what can be at work — at most one subtask per thread —
// not what was handed to the experts: with concurrency 16 on 2 threads it used to read
// "worker 16" (or "hasher 272" in the folder audit), counting the subtasks taken ahead.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { bin, planFolder, scratch } from './helpers.js';

const exec = promisify(execFile);
const { root, remove } = scratch('troupe-progress-');
afterAll(remove);

describe('troupe run progress on a terminal', () => {
  it('never shows more at work than the threads', async () => {
    const { dir, file } = planFolder(root, {
      name: 'busy',
      experts: [{ name: 'worker', module: './spin.mjs', skills: { math: 1 }, concurrency: 16 }],
      analysis: {
        stages: [{ name: 'spin', needs: 'math', forEach: { range: { from: 0, to: 48 } } }],
      },
      policies: { threads: 2 },
    });
    // Each subtask holds its thread ~20 ms: long enough for frames to be drawn mid-run.
    writeFileSync(
      join(dir, 'spin.mjs'),
      'export default (input) => { const end = Date.now() + 20; while (Date.now() < end); return input.item; };\n',
    );
    // `script` (util-linux) gives the child a pseudo-terminal, as a user's shell would.
    const { stdout } = await exec(
      'script',
      ['-qec', `${process.execPath} ${bin} run ${file}`, '/dev/null'],
      {
        timeout: 60_000,
        env: { ...process.env, NO_COLOR: '1' },
      },
    );
    const frames = stdout
      .split('\r\u001b[2K')
      .map((f) => f.trim())
      .filter((f) => /^\d+\/48 · /.test(f));
    expect(frames.length).toBeGreaterThan(0);
    for (const frame of frames) {
      const work = frame.split(' · ')[1] as string;
      expect(work, frame).toMatch(/^(idle|[0-2]\/2 threads: worker)$/);
      for (const n of work.match(/\d+/g) ?? []) expect(Number(n), frame).toBeLessThanOrEqual(2);
    }
  });
});
