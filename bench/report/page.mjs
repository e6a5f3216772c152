// What the report page of a large run weighs and how fast it opens: one troupe (one expert,
// concurrency 2, 2 threads), one run of N subtasks (~0.2 ms of CPU each, 1 in 100 failing on
// every attempt, 2 attempts each), its page with the three machine diagrams (as
// `troupe run --report` writes it), then R loads of the page in Chromium (Debian's, through
// playwright-core): from navigation until its script has drawn the timeline. Prints the page's
// size, the time to make it, the load times (median, min–max) and the time of one redraw.
//
//   npm run build && node bench/report/page.mjs [N=10000] [R=5]
// Needs Chromium (apt-get install -y chromium, or CHROMIUM_PATH=/path/to/chrome).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { createTroupe, defineExpert, toReportHtml } from '../../dist/src/index.js';
import { MACHINES, machineGraph, toDot, toSvg } from '../../dist/src/viz/machines.js';

const [n = '10000', r = '5'] = process.argv.slice(2);
const N = Number(n);
const module = new URL('../../test/fixtures/behave.mjs', import.meta.url);
const plan = {
  analyze: () =>
    Array.from({ length: N }, (_, i) => ({
      id: `file-${i}`,
      needs: 'work',
      input: i % 100 === 7 ? { op: 'throw', message: `bad input ${i}` } : { op: 'spin', ms: 0.2 },
    })),
};
const troupe = createTroupe({
  threads: 2,
  experts: [
    defineExpert({ name: 'worker', skills: { work: 1 }, module, concurrency: 2, attempts: 2 }),
  ],
});
const outcome = await troupe.run(plan, null);
await troupe.close();
const diagrams = [];
for (const [name, machine] of Object.entries(MACHINES))
  diagrams.push({ name: `${name} machine`, svg: await toSvg(toDot(machineGraph(machine))) });
const t0 = performance.now();
const html = toReportHtml(outcome, { diagrams });
const makeMs = performance.now() - t0;
const dir = mkdtempSync(join(tmpdir(), 'troupe-report-'));
const file = join(dir, 'report.html');
writeFileSync(file, html);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const loads = [];
const redraws = [];
let drawn;
try {
  for (let k = 0; k < Number(r); k++) {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const start = performance.now();
    await page.goto(`file://${file}`);
    await page.waitForFunction(() => document.documentElement.dataset.ready === '1');
    loads.push(performance.now() - start);
    drawn = await page.evaluate(() => document.documentElement.dataset.drawn);
    // A redraw of the whole timeline, as a zoom, pan or reset makes (synchronous in its handler).
    redraws.push(
      await page.evaluate(() => {
        const canvas = document.getElementById('timeline');
        const t = performance.now();
        canvas.dispatchEvent(new MouseEvent('dblclick'));
        return performance.now() - t;
      }),
    );
    await page.close();
  }
} finally {
  await browser.close();
  rmSync(dir, { recursive: true, force: true });
}
const median = (list) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)];
const sorted = [...loads].sort((a, b) => a - b);
console.log(
  `${N} subtasks (${outcome.status}, ${outcome.attempts.length} attempts, ${outcome.records.filter((x) => x.status !== 'done').length} not done): ` +
    `page ${(Buffer.byteLength(html) / 1024).toFixed(0)} KiB, made in ${makeMs.toFixed(0)} ms; ` +
    `opens in ${median(loads).toFixed(0)} ms [${sorted[0].toFixed(0)}–${sorted.at(-1).toFixed(0)}] over ${loads.length} loads ` +
    `(Chromium ${browser.version()}; ${drawn} attempts drawn); a redraw ${median(redraws).toFixed(1)} ms`,
);
