/// <reference lib="dom" />
// The report page in a real browser (Debian's Chromium through playwright-core; CHROMIUM_PATH
// names another): it opens from a file with no request beyond it, its script runs under its
// own Content-Security-Policy with no error, a script smuggled in through the run's strings
// does not, the timeline draws the attempts, hovering one names it, the wheel zooms and a
// double click resets. A screenshot of the page is saved to test-artifacts/report-page.png.
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toReportHtml } from '../../dist/src/index.js';
import { HOSTILE, reportTroupe } from './helpers.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'troupe-report-browser-'));
let browser: Browser;
let file: string;
let attempts: number;

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(
      `the report's browser test needs Chromium at ${CHROMIUM}: apt-get install -y chromium, or set CHROMIUM_PATH (docs/development.md)`,
    );
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  const t = reportTroupe();
  try {
    const outcome = await t.run(
      {
        name: HOSTILE,
        analyze: () => [
          ...Array.from({ length: 40 }, (_, i) => ({
            id: `spin-${i}`,
            needs: 'a',
            input: { op: 'spin', ms: 2 },
          })),
          { id: 'broken', needs: 'b', input: { op: 'throw', message: HOSTILE } },
        ],
      },
      null,
    );
    attempts = outcome.attempts.length;
    file = join(dir, 'report.html');
    writeFileSync(
      file,
      toReportHtml(outcome, {
        diagrams: [
          {
            name: 'a machine',
            svg: '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" onload="window.__pwned=4"><script>window.__pwned=3</script><rect width="120" height="40" fill="#4c6ef5"/></svg>',
          },
        ],
      }),
    );
  } finally {
    await t.close({ force: true });
  }
}, 60_000);

afterAll(async () => {
  await browser?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Opens the page; returns it with what it requested and every error it reported. */
async function openReport(): Promise<{ page: Page; requests: string[]; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const requests: string[] = [];
  const problems: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') problems.push(`console: ${m.text()}`);
  });
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  await page.goto(`file://${file}`);
  await page.waitForFunction(() => document.documentElement.dataset.ready === '1', undefined, {
    timeout: 20_000,
  });
  return { page, requests, problems };
}

const drawn = (page: Page) => page.evaluate(() => Number(document.documentElement.dataset.drawn));

describe('the report page in Chromium', () => {
  it('opens offline, runs only its own script, and draws every attempt', async () => {
    const { page, requests, problems } = await openReport();
    expect(requests).toEqual([`file://${file}`]);
    expect(problems).toEqual([]);
    expect(await page.evaluate(() => (window as { __pwned?: number }).__pwned)).toBeUndefined();
    // The diagram shows, as an image, and its script ran nowhere.
    expect(
      await page.evaluate(
        () => (document.querySelector('figure img') as HTMLImageElement).naturalWidth,
      ),
    ).toBe(120);
    expect(await page.title()).toContain(HOSTILE.slice(0, 20));
    // One bar per attempt (each is wider than a pixel at this size: ~2 ms of a ~50 ms run).
    expect(await drawn(page)).toBe(attempts);
    // The canvas holds pixels other than the background.
    const inked = await page.evaluate(() => {
      const canvas = document.getElementById('timeline') as HTMLCanvasElement;
      const pixels = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 3; i < (pixels?.length ?? 0); i += 4)
        if (((pixels as Uint8ClampedArray)[i] as number) > 0) n++;
      return n;
    });
    expect(inked).toBeGreaterThan(1000);
    // Kept for a person to look at (test-artifacts/ is not committed).
    const shot = join(ARTIFACTS, 'report-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    await page.close();
  });

  it('hovering an attempt names it; the wheel zooms and a double click resets', async () => {
    const { page, problems } = await openReport();
    const box = await page.locator('#timeline').boundingBox();
    if (box === null) throw new Error('no timeline on the page');
    // The first thread's row (below the stages row): sweep it until the tip shows an attempt.
    const y = box.y + 24 + 20 + 10;
    let tip = '';
    for (let x = box.x + 112; x < box.x + box.width - 8 && tip === ''; x += 5) {
      await page.mouse.move(x, y);
      tip = (await page.locator('#tip').isVisible())
        ? ((await page.locator('#tip').textContent()) ?? '')
        : '';
    }
    expect(tip).toMatch(/^(spin-\d+|broken) · (alpha|beta)\nattempt \d, (done|failed)/);
    const before = await drawn(page);
    await page.mouse.move(box.x + 115, y);
    for (let k = 0; k < 20; k++) await page.mouse.wheel(0, -100);
    await page.waitForFunction((n) => Number(document.documentElement.dataset.drawn) < n, before);
    await page.mouse.dblclick(box.x + box.width / 2, y);
    await page.waitForFunction((n) => Number(document.documentElement.dataset.drawn) === n, before);
    expect(problems).toEqual([]);
    await page.close();
  });
});
