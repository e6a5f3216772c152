// troupe run --inspect: the relay serves the inspector's page and its WebSocket on 127.0.0.1, a
// client connected to it receives the run's events (every one JSON), and the process exits by
// itself at the end. @statelyai/inspect is loaded only then.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'dist/src/cli/bin.js');

describe('troupe run --inspect', () => {
  it('serves the page and the events on 127.0.0.1, and exits by itself when the run ends', async () => {
    const child = spawn(
      process.execPath,
      [
        bin,
        'run',
        join(root, 'examples/fractal/fractal.plan.yaml'),
        '--input',
        join(root, 'examples/fractal/input.json'),
        '--json',
        '--inspect=0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let stdout = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    const url = await new Promise<string>((resolve, reject) => {
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        const found = /inspect this run at (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr);
        if (found !== null) resolve(found[1] as string);
      });
      child.once('exit', () => reject(new Error(`exited before serving: ${stderr}`)));
    });
    const page = await (await fetch(url)).text();
    expect(page).toContain('https://stately.ai/inspect');
    const messages: string[] = [];
    const socket = new WebSocket(url.replace('http:', 'ws:'));
    socket.on('message', (data) => messages.push(String(data)));
    const exit = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(exit, stderr).toBe(0);
    expect(JSON.parse(stdout).status).toBe('done');
    expect(messages.length).toBeGreaterThan(0);
    const parsed = messages.map((m) => JSON.parse(m));
    const actors = parsed.filter((m) => m.type === '@xstate.actor').map((m) => m.name);
    expect(actors).toContain('coordinator');
    expect(actors).toContain('run-1');
    // Every subtask attempt of the run is a task.
    const records = JSON.parse(stdout).records as unknown[];
    const tasks = new Set(
      parsed.filter((m) => String(m.sessionId).startsWith('task:')).map((m) => m.sessionId),
    );
    expect(tasks.size).toBe(records.length);
    socket.close();
  });

  it('refuses a port that is not one', async () => {
    const child = spawn(process.execPath, [bin, 'run', 'x.json', '--inspect=http'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    const exit = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(exit).toBe(2);
    expect(stderr).toContain('--inspect=<port>: expected an integer from 0 to 65535, got "http"');
  });

  it('loads @statelyai/inspect only for --inspect: nothing else imports it, and only lazily', () => {
    const importers: string[] = [];
    const walk = (dir: string): void => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (path.endsWith('.ts')) {
          const text = readFileSync(path, 'utf8');
          if (/from\s+['"]@statelyai\/inspect/.test(text.replace(/^import type .*$/gm, '')))
            importers.push(`${path} (static)`);
          if (/import\(\s*['"]@statelyai\/inspect/.test(text)) importers.push(path);
          if (/import\(\s*['"][./]*inspect\/relay\.js['"]\s*\)/.test(text))
            importers.push(`${path} → relay`);
          if (/from\s+['"][./]*inspect\/relay\.js['"]/.test(text.replace(/^import type .*$/gm, '')))
            importers.push(`${path} → relay (static)`);
        }
      }
    };
    walk(join(root, 'src'));
    expect(importers.map((p) => p.slice(root.length))).toEqual([
      'src/cli/commands/plans.ts → relay',
      'src/inspect/relay.ts',
    ]);
  });
});
