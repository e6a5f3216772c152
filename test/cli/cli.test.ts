// The troupe command: run as a user would, in a child process, from the built package.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { main } from '../../dist/src/cli/main.js';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const pkg = (await import('../../package.json', { with: { type: 'json' } })).default as {
  version: string;
};

function capture() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    io: { stdout: (t: string) => (out.stdout += t), stderr: (t: string) => (out.stderr += t) },
  };
}

describe('troupe', () => {
  it('--version prints the package version', async () => {
    const { stdout } = await run(process.execPath, [bin, '--version']);
    expect(stdout).toBe(`${pkg.version}\n`);
  });

  it('--help lists the commands', async () => {
    const { stdout } = await run(process.execPath, [bin, '--help']);
    expect(stdout).toMatch(/Usage: troupe <command>/);
    expect(stdout).toMatch(/info\s+print the version/);
  });

  it('an unknown command or flag exits 2 with the help on stderr', async () => {
    const a = capture();
    expect(await main(['frobnicate'], a.io)).toBe(2);
    expect(a.out.stderr).toMatch(/unknown command "frobnicate"/);
    const b = capture();
    expect(await main(['--frob'], b.io)).toBe(2);
    expect(b.out.stderr).toMatch(/^troupe: unknown option --frob\n/);
  });

  it('info --json describes the machine; info --help shows its usage', async () => {
    const a = capture();
    expect(await main(['info', '--json'], a.io)).toBe(0);
    expect(JSON.parse(a.out.stdout)).toMatchObject({ troupe: pkg.version, node: process.version });
    const b = capture();
    expect(await main(['info', '--help'], b.io)).toBe(0);
    expect(b.out.stdout).toMatch(/Usage: troupe info/);
  });
});

describe('troupe in a pipe', () => {
  it('exits quietly when the reader closes the pipe early', async () => {
    const { execFile: exec } = await import('node:child_process');
    const child = exec(process.execPath, [bin, 'info']);
    child.stdout?.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
  });
});
