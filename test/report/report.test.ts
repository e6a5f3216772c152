// The report page (src/report/report.ts): one HTML file with every part the issue names, that
// fetches nothing (no external reference, a Content-Security-Policy of 'none' but its own
// script), whose embedded data holds every attempt, and where the run's own strings (plan
// names, error messages) are text, never markup. Bad arguments end as E_INVALID_OPTION naming
// the field; troupe run --report writes it, also for a run that fails, and refuses a file it
// cannot write before the run starts.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type Outcome, type Troupe, toReportHtml } from '../../dist/src/index.js';
import { troupe as troupeCli } from '../cli/helpers.js';
import { HOSTILE, reportTroupe } from './helpers.js';

const open: Troupe[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((t) => t.close({ force: true })));
});
const dir = mkdtempSync(join(tmpdir(), 'troupe-report-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function runOf(failing: boolean): Promise<Outcome> {
  const t = reportTroupe();
  open.push(t);
  return t.run(
    {
      name: `report ${HOSTILE}`,
      analyze: () => [
        ...Array.from({ length: 12 }, (_, i) => ({
          id: `a${i}`,
          needs: 'a',
          input: { op: 'spin', ms: 1 },
        })),
        { id: 'flaky', needs: 'b', input: { op: 'failUntil', okAt: 2 } },
        ...(failing
          ? [{ id: 'broken', needs: 'b', input: { op: 'throw', message: HOSTILE } }]
          : []),
      ],
      validate: () => ({ complete: true, note: HOSTILE }),
    },
    null,
  );
}

/** The page's embedded data, as its script reads it. */
function dataOf(html: string): { attempts: number[]; subtasks: string[]; experts: string[] } {
  const match = /<script type="application\/json" id="troupe-data">([\s\S]*?)<\/script>/.exec(html);
  expect(match, 'the page embeds its data').not.toBeNull();
  return JSON.parse((match as RegExpExecArray)[1] as string);
}

/** Nothing on the page can make the browser fetch anything. */
function expectSelfContained(html: string): void {
  expect(html).toContain(`content="default-src 'none';`);
  expect(html).not.toMatch(
    /<(script|img|iframe|link|embed|object)\b[^>]*\s(src|href)=(?!["']?data:)/i,
  );
  expect(html).toContain("form-action 'none'; base-uri 'none'");
  expect(html).not.toMatch(/@import|url\(\s*['"]?(https?:)?\/\//i);
  // Exactly the page's own two script elements: its data and its code.
  expect(html.match(/<script\b/gi)).toHaveLength(2);
}

describe('the report page', () => {
  it('has every part, holds every attempt, and fetches nothing', async () => {
    const outcome = await runOf(false);
    expect(outcome.status).toBe('done');
    const html = toReportHtml(outcome, {
      diagrams: [
        {
          name: 'a drawn one',
          svg: '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>',
        },
        { name: 'a text one', mermaid: 'stateDiagram-v2\n  [*] --> a' },
      ],
    });
    for (const part of ['Summary', 'Timeline', 'Experts', 'Quality', 'Failures', 'State machines'])
      expect(html).toContain(`<h2>${part}</h2>`);
    expect(html).toContain('parallelism');
    expect(html).toContain('efficiency over 2 threads');
    expect(html).toContain('&quot;complete&quot;: true');
    // A diagram is an image of its own: nothing in its SVG is part of the page.
    const svg = '<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>';
    expect(html).toContain(
      `<img alt="a drawn one" src="data:image/svg+xml;base64,${Buffer.from(svg).toString('base64')}">`,
    );
    expect(html).not.toContain('<?xml');
    expect(html).toContain('stateDiagram-v2');
    expectSelfContained(html);
    const data = dataOf(html);
    expect(data.attempts).toHaveLength(outcome.attempts.length * 9);
    expect(outcome.attempts).toHaveLength(14);
    expect(new Set(data.subtasks)).toEqual(new Set(outcome.records.map((r) => r.id)));
    expect(data.experts).toEqual(['alpha', 'beta']);
    // Both experts' rows, with their subtasks.
    expect(html).toMatch(/<td>alpha<\/td><td class="num">12<\/td>/);
    expect(html).toMatch(/<td>beta<\/td><td class="num">1<\/td>/);
  });

  it('a failed run: the run error, the failures with their causes, and the run’s strings as text', async () => {
    const outcome = await runOf(true);
    expect(outcome.status).toBe('failed');
    const html = toReportHtml(outcome);
    expect(html).toContain('<span class="badge failed">failed</span>');
    expect(html).toContain('<td>broken</td><td>failed</td><td>beta</td><td class="num">2</td>');
    expect(html).toContain('E_TASK_FAILED');
    expect(html).toContain('earlier attempts:');
    expect(html).toContain('No quality report');
    // A diagram whose SVG carries markup of its own changes nothing on the page.
    const spoof = toReportHtml(outcome, {
      diagrams: [
        {
          name: 'spoof',
          svg: '<svg xmlns="http://www.w3.org/2000/svg"><script>window.__pwned=3</script></svg><form action="https://x.test"><script type="application/json" id="troupe-data">{}</script>',
        },
      ],
    });
    expect(spoof).not.toMatch(/<form|__pwned=3/);
    expect(spoof.match(/id="troupe-data"/g)).toHaveLength(1);
    expectSelfContained(spoof);
    // The plan's name and the error's message are escaped; the data cannot end its element.
    expect(html).not.toContain(HOSTILE);
    expect(html).toContain('&lt;/script&gt;&lt;script&gt;window.__pwned = 1&lt;/script&gt;');
    expectSelfContained(html);
    dataOf(html);
  });

  it('refuses what is not an outcome or an option, naming the field', async () => {
    const outcome = await runOf(false);
    const refused = (run: () => unknown, message: RegExp) => {
      let thrown: unknown;
      try {
        run();
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toMatchObject({ name: 'TroupeError', code: 'E_INVALID_OPTION' });
      expect((thrown as Error).message).toMatch(message);
    };
    refused(() => toReportHtml(null as never), /^outcome: expected an object .*got null/);
    refused(
      () => toReportHtml({ ...outcome, attempts: 3 } as never),
      /^outcome\.attempts: expected an array/,
    );
    refused(
      () => toReportHtml({ ...outcome, status: 'ok' } as never),
      /^outcome\.status: expected "done"/,
    );
    refused(
      () =>
        toReportHtml({
          ...outcome,
          attempts: [
            {
              expert: 'x',
              get subtask() {
                throw new Error('no');
              },
            },
          ],
        } as never),
      /^outcome: expected an outcome of troupe\.run\(\), got one that could not be read \(no\)/,
    );
    refused(
      () =>
        toReportHtml(
          new Proxy(outcome, {
            get() {
              throw new Error('trap');
            },
          }),
        ),
      /^outcome/,
    );
    refused(
      () => toReportHtml(outcome, { diagram: [] } as never),
      /options\.diagram: unknown key; did you mean "diagrams"\?/,
    );
    refused(
      () => toReportHtml(outcome, { title: 7 } as never),
      /^options\.title: expected a string, got number 7/,
    );
    refused(
      () => toReportHtml(outcome, { diagrams: {} } as never),
      /^options\.diagrams: expected an array/,
    );
    refused(
      () => toReportHtml(outcome, { diagrams: [{ name: 'x' }] }),
      /^options\.diagrams\[0\]: expected one of svg and mermaid/,
    );
    refused(
      () => toReportHtml(outcome, { diagrams: [{ name: 'x', svg: '<script>1</script>' }] }),
      /^options\.diagrams\[0\]\.svg: expected an SVG document/,
    );
    refused(
      () => toReportHtml(outcome, { diagrams: [{ name: 'x', mermaid: 1 }] } as never),
      /^options\.diagrams\[0\]\.mermaid: expected a string, got number 1/,
    );
    expect(toReportHtml(outcome, { title: 'mine' })).toContain('<title>mine</title>');
  });

  /** `troupe run` of the fractal example, its page written to `file`. */
  const runFractal = (file: string) =>
    troupeCli(
      [
        'run',
        'examples/fractal/fractal.plan.yaml',
        '--input',
        'examples/fractal/input.json',
        '--report',
        file,
      ],
      { cwd: join(import.meta.dirname, '../..') },
    );

  it('troupe run --report writes the page with the machines drawn', async () => {
    const file = join(dir, 'fractal.html');
    const ran = await runFractal(file);
    expect(ran.code, ran.stderr).toBe(0);
    const html = readFileSync(file, 'utf8');
    expectSelfContained(html);
    for (const machine of ['coordinator', 'run', 'expert'])
      expect(html).toContain(
        `<figcaption>${machine} machine</figcaption><img alt="${machine} machine" src="data:image/svg+xml;base64,`,
      );
    expect(html).toContain('<span class="badge done">done</span>');
  });

  it('troupe run --report refuses a file it cannot write, before the run', async () => {
    const file = join(dir, 'no-such-folder', 'r.html');
    const ran = await runFractal(file);
    expect(ran.code).toBe(2);
    expect(ran.stderr).toContain(`--report: cannot write ${file}`);
    expect(ran.stderr).not.toContain('fractal: done');
    expect(existsSync(file)).toBe(false);
  });
});
