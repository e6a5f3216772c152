// The watchdog: when Piscina stops replacing threads (a thread died while booting) and work
// waits with no thread left, the pool starts one. Run in a child process whose every worker
// thread loads a preload that kills thread 2 while it boots.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const path = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

describe('the process lifetime', () => {
  it('an idle pool never closed does not keep the process alive', async () => {
    const { stdout } = await run(process.execPath, [path('idle-exit-scenario.mjs')], {
      timeout: 20_000,
    });
    expect(stdout).toBe('done\n');
  });
});

describe('watchdog', () => {
  // Without the watchdog this child hangs (verified by hand with watchdogIntervalMs: 1e9); and
  // pending work keeps the process alive, or it would exit 13 with B unsettled.
  it('work waiting with no thread alive still runs', async () => {
    const { stdout } = await run(
      process.execPath,
      ['--import', path('kill-thread-at-boot.mjs'), path('watchdog-scenario.mjs')],
      { env: { ...process.env, TROUPE_KILL_THREAD: '2' }, timeout: 20_000 },
    );
    expect(JSON.parse(stdout)).toEqual({
      a: { code: 'E_WORKER_CRASHED' },
      b: { value: 'b' },
      after: { value: 'after' },
    });
  });
});
