// What `troupe` says about its own use: bare `troupe` is incomplete usage (exit 2, usage on
// stderr) while `--help` is a question answered (exit 0, stdout); every command's --help lists
// every flag it takes, and no flag it refuses.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { defaultRegistry } from '../../dist/src/cli/main.js';
import { audit, runProcess, troupe, troupeHere } from './helpers.js';

/** The flags a usage text lists: its option lines, `  --name` or `  -h, --help`. */
const flagsIn = (usage: string): string[] =>
  [...usage.matchAll(/^ +(?:-\w, )?--([a-z][\w-]*)/gm)].map((m) => m[1] as string).sort();

describe('usage', () => {
  it('troupe with no arguments prints the usage on stderr and exits 2', async () => {
    const { code, stdout, stderr } = await troupe([]);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^troupe: an actor-model runtime/);
    expect(stderr).toMatch(/Usage: troupe <command> \[options\]/);
  });

  it('troupe --help prints it on stdout and exits 0', async () => {
    for (const flag of ['--help', '-h']) {
      const { code, stdout, stderr } = await troupeHere([flag]);
      expect(code).toBe(0);
      expect(stderr).toBe('');
      expect(stdout).toMatch(/Usage: troupe <command> \[options\]/);
    }
  });

  it('troupe experts --help lists --json', async () => {
    const { stdout } = await troupeHere(['experts', '--help']);
    expect(stdout).toMatch(/^ {2}--json +one JSON document on stdout/m);
  });

  for (const command of defaultRegistry().list()) {
    it(`troupe ${command.name} --help lists every flag it takes, and only those`, async () => {
      const { code, stdout } = await troupeHere([command.name, '--help']);
      expect(code).toBe(0);
      expect(stdout).toMatch(new RegExp(`^Usage: troupe ${command.name}`));
      expect(flagsIn(stdout)).toEqual([...Object.keys(command.flags), 'help'].sort());
    });
  }

  it('npm start -- --help lists every flag the folder audit takes', async () => {
    const { code, stdout } = await runProcess(process.execPath, [audit, '--help']);
    expect(code).toBe(0);
    const source = readFileSync(audit, 'utf8');
    const parsed = [
      ...source.matchAll(/^ {4}'?([a-z][\w-]*)'?: \{ type: '(?:string|boolean)' \}/gm),
    ].map((m) => m[1] as string);
    expect(parsed.length).toBeGreaterThan(5);
    expect(flagsIn(stdout)).toEqual([...parsed, 'help'].sort());
  });
});
