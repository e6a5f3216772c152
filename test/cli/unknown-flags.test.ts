// A mistyped flag is refused (exit 2) with the closest flag the command takes, on every command,
// at the top level and in `npm start` (the folder audit): never ignored, never a bare
// "Unknown option".
import { describe, expect, it } from 'vitest';
import { audit, auditPlan, runProcess, troupe, troupeHere } from './helpers.js';

describe('unknown flags are refused with a suggestion', () => {
  const cases: [string, string[], string][] = [
    [
      'run',
      ['run', auditPlan, '--inptu', 'x'],
      'troupe run: unknown option --inptu; did you mean --input?',
    ],
    [
      'run (a short flag for a long one)',
      ['run', auditPlan, '-input', 'x'],
      'troupe run: unknown option -input; did you mean --input?',
    ],
    [
      'validate',
      ['validate', auditPlan, '--allow-outisde'],
      'troupe validate: unknown option --allow-outisde; did you mean --allow-outside?',
    ],
    [
      'experts',
      ['experts', auditPlan, '--jsno'],
      'troupe experts: unknown option --jsno; did you mean --json?',
    ],
    ['schema', ['schema', '--jsn'], 'troupe schema: unknown option --jsn'],
    ['bench', ['bench', '--quik'], 'troupe bench: unknown option --quik; did you mean --quick?'],
    ['info', ['info', '--jsn'], 'troupe info: unknown option --jsn; did you mean --json?'],
    ['the top level', ['--verison'], 'troupe: unknown option --verison; did you mean --version?'],
    [
      'the top level, a command name',
      ['valdate', auditPlan],
      'troupe: unknown command "valdate"; did you mean "validate"?',
    ],
    [
      'no close flag',
      ['run', auditPlan, '--frobnicate'],
      'troupe run: unknown option --frobnicate\n',
    ],
  ];
  for (const [what, args, message] of cases) {
    it(what, async () => {
      const { code, stdout, stderr } = await troupeHere(args);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr.startsWith(message)).toBe(true);
    });
  }

  it('a flag named like a key of Object.prototype is unknown like any other', async () => {
    for (const [args, message] of [
      [['validate', auditPlan, '--constructor'], 'troupe validate: unknown option --constructor\n'],
      [['info', '--toString'], 'troupe info: unknown option --toString\n'],
      [['run', auditPlan, '--hasOwnProperty=1'], 'troupe run: unknown option --hasOwnProperty\n'],
      [['--__proto__'], 'troupe: unknown option --__proto__\n'],
    ] as const) {
      const { code, stderr } = await troupeHere([...args]);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr.startsWith(message), stderr).toBe(true);
    }
  });

  it('a bench scope named like a key of Object.prototype is refused before anything runs', async () => {
    for (const scope of ['constructor', '__proto__', 'toString']) {
      const { code, stderr } = await troupeHere(['bench', '--scope', scope]);
      expect(code).toBe(2);
      expect(stderr).toMatch(
        new RegExp(`^troupe bench: --scope: expected one of .*; got "${scope}"`),
      );
    }
  });

  it('a flag without its value, or a value for a flag that takes none, names the flag', async () => {
    expect((await troupeHere(['run', auditPlan, '--input'])).stderr).toMatch(
      /^troupe run: --input: expected a value, got nothing/,
    );
    expect((await troupeHere(['info', '--json=yes'])).stderr).toMatch(
      /^troupe info: --json: takes no value, got "yes"/,
    );
  });

  it('as a user runs it: exit 2, the message first on stderr, then the usage', async () => {
    const { code, stdout, stderr } = await troupe(['run', auditPlan, '--inptu', 'x']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(
      /^troupe run: unknown option --inptu; did you mean --input\?\n\nUsage: troupe run/,
    );
  });

  it('npm start (the folder audit) refuses one the same way', async () => {
    const { code, stdout, stderr } = await runProcess(process.execPath, [audit, '--thread', '2']);
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^audit: unknown option --thread; did you mean --threads\?\n/);
  });
});
