// Running the troupe command and the folder audit as a user does: in a child process, from the
// built package, with the exit code and both streams kept whatever the outcome.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../dist/src/cli/main.js';

export const bin = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
export const audit = fileURLToPath(
  new URL('../../examples/folder-audit/audit.mjs', import.meta.url),
);
export const auditPlan = fileURLToPath(
  new URL('../../examples/folder-audit/audit.plan.yaml', import.meta.url),
);
export const fixturesDir = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the child's stdin, which is then closed. */
  stdin?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs `command args` to its exit; never rejects for a non-zero exit. */
export function runProcess(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (options.stdin !== undefined) child.stdin?.end(options.stdin);
  });
}

/** `troupe <args>` in a child process. */
export const troupe = (args: string[], options?: RunOptions): Promise<Ran> =>
  runProcess(process.execPath, [bin, ...args], options);

/** `troupe <args>` in this process (no thread is started by what it is used for): faster. */
export async function troupeHere(args: string[]): Promise<Ran> {
  const out = { stdout: '', stderr: '' };
  const code = await main(args, {
    stdout: (t) => {
      out.stdout += t;
    },
    stderr: (t) => {
      out.stderr += t;
    },
  });
  return { code, ...out };
}

/** A scratch folder for one test file, removed by the returned function. */
export function scratch(prefix: string): { root: string; remove: () => void } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  return { root, remove: () => rmSync(root, { recursive: true, force: true }) };
}

let counter = 0;
/** A fresh folder under `root` with a worker module `work.mjs` and the plan file (JSON unless told). */
export function planFolder(
  root: string,
  plan: unknown,
  name = 'plan.json',
): { dir: string; file: string } {
  const dir = join(root, `p${++counter}`);
  mkdirSync(dir);
  writeFileSync(
    join(dir, 'work.mjs'),
    'export default (input) => ({ doubled: (input?.item ?? 0) * 2, input });\n',
  );
  const file = join(dir, name);
  writeFileSync(file, typeof plan === 'string' ? plan : JSON.stringify(plan, null, 2));
  return { dir, file };
}

/** The smallest plan: one expert, a range fan-out of `stages` replaced when given. */
export const tinyPlan = (analysis?: unknown) => ({
  name: 'tiny',
  experts: [{ name: 'worker', module: './work.mjs', skills: { math: 3 } }],
  analysis: analysis ?? {
    stages: [{ name: 'double', needs: 'math', forEach: { range: { from: 1, to: 3 } } }],
  },
  policies: { threads: 1 },
});
