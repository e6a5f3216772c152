// troupe run --inspect-log writes every inspection event as a record of troupe's own (one JSON
// line each); troupe replay <log> --inspect sends them to the inspector again, in order, and
// exits by itself.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'dist/src/cli/bin.js');

function troupe(args: string[], onStderr?: (text: string) => void) {
  const child = spawn(process.execPath, [bin, ...args], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    onStderr?.(stderr);
  });
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.once('exit', (code) => resolve({ code, stdout, stderr })),
  );
}

describe('inspection logs', () => {
  it('run --inspect-log writes one record a line; replay --inspect sends each to the inspector', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-log-'));
    const log = join(dir, 'run.jsonl');
    const ran = await troupe([
      'run',
      'examples/fractal/fractal.plan.yaml',
      '--input',
      'examples/fractal/input.json',
      '--json',
      '--inspect-log',
      log,
    ]);
    expect(ran.code, ran.stderr).toBe(0);
    const records = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    for (const r of records) {
      expect(r.v).toBe(1);
      expect(['actor', 'event', 'snapshot']).toContain(r.kind);
      expect(typeof r.sessionId).toBe('string');
    }
    const actors = records.filter((r) => r.kind === 'actor').map((r) => r.name);
    expect(actors).toContain('coordinator');
    expect(actors).toContain('run-1');
    const subtasks = JSON.parse(ran.stdout).records.length;
    expect(
      records.filter((r) => r.kind === 'actor' && r.sessionId.startsWith('task:')),
    ).toHaveLength(subtasks);

    const messages: string[] = [];
    let socket: WebSocket | undefined;
    const replayed = await troupe(['replay', log, '--inspect=0'], (stderr) => {
      const url = /open (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1];
      if (url !== undefined && socket === undefined) {
        socket = new WebSocket(url.replace('http:', 'ws:'));
        socket.on('message', (data) => messages.push(String(data)));
      }
    });
    expect(replayed.code, replayed.stderr).toBe(0);
    expect(replayed.stderr).toContain(`${records.length} records sent`);
    expect(messages).toHaveLength(records.length);
    const first = JSON.parse(messages[0] as string);
    expect(first.type).toMatch(/^@xstate\.(actor|event|snapshot)$/);
    expect(typeof first._version).toBe('string');
    socket?.close();
  });

  it('replay refuses a file that is not a log, and a replay with nowhere to go', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'troupe-log-'));
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"v":1,"kind":"actor","sessionId":"x"}\n{"hello":1}\n');
    const out = await troupe(['replay', bad, '--inspect=0']);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`${bad}:2: not an inspection record of troupe (format 1)`);
    const nowhere = await troupe(['replay', bad]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toContain('replay needs --inspect');
  });
});
