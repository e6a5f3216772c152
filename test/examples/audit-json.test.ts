// The folder audit's `--json` command, exactly as README shows it, prints one JSON document on
// stdout and nothing else (`npm start -- --json` alone gets npm's banner first).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { repoRoot, runProcess } from '../cli/helpers.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const section = readme.slice(
  readme.indexOf('## The main job: a folder audit'),
  readme.indexOf('\n## ', readme.indexOf('## The main job: a folder audit') + 1),
);

describe('README: the folder audit with --json', () => {
  it('the command it shows prints exactly one JSON document on stdout', async () => {
    const line = section.split('\n').find((l) => /^npm start .*--json/.test(l));
    expect(line, 'a `npm start ... --json` line in the folder-audit section').toBeDefined();
    const command = (line as string).replace(/\s+#.*$/, '');
    const { code, stdout, stderr } = await runProcess('sh', ['-c', command], { cwd: repoRoot });
    expect(code, stderr).toBe(0);
    const report = JSON.parse(stdout) as { status: string; result: { totals: { files: number } } };
    expect(report.status).toBe('done');
    expect(report.result.totals.files).toBeGreaterThan(0);
    expect(stdout.trim().split('\n')).toHaveLength(1);
  });
});
