// `npm start -- --dir <path>` says so when the path is not a folder (it used to audit nothing
// and fail E_QUALITY "no file was audited"), and when a folder holds nothing to audit.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { audit, runProcess, scratch } from '../cli/helpers.js';

const { root, remove } = scratch('troupe-audit-dir-');
afterAll(remove);

describe('npm start -- --dir', () => {
  it('a folder that does not exist: exit 2, and it says so', async () => {
    const missing = join(root, 'no-such-folder');
    const { code, stdout, stderr } = await runProcess(process.execPath, [audit, '--dir', missing]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe(`audit: --dir: expected a folder, got ${missing}, which does not exist\n`);
  });

  it('a file: exit 2, and it says so', async () => {
    const { code, stderr } = await runProcess(process.execPath, [audit, '--dir', audit]);
    expect(code).toBe(2);
    expect(stderr).toBe(`audit: --dir: expected a folder, got ${audit}, which is a file\n`);
  });

  it('a folder with no text file: exit 1, naming the kinds it looks for', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const { code, stderr } = await runProcess(process.execPath, [audit, '--dir', empty]);
    expect(code).toBe(1);
    expect(stderr).toMatch(
      new RegExp(`^audit: ${empty} holds no text file to audit \\(\\.js .*\\)\\n$`),
    );
  });
});
