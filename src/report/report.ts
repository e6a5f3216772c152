/**
 * A run as one self-contained HTML page (`troupe run --report file.html`, or
 * {@link toReportHtml} from a service): the summary, parallelism and efficiency, a timeline of
 * the attempts per thread, each expert's share of the work, the quality report, the failures with
 * their causes, the busiest message pairs, and the machine diagrams. Style, script and data are
 * inlined: the page needs no network to open. Every string of the run is escaped.
 */
import { createHash } from 'node:crypto';
import { invalidOption, isTroupeError, messageOf, TroupeError } from '../errors.js';
import { readArray, readFields } from '../fields.js';
import { summarize } from '../inspect/summary.js';
import { threadLanes } from '../trace/timeline.js';
import type { Outcome, SubtaskRecord } from '../types.js';
import { PAGE_SCRIPT, PAGE_STYLE, PALETTE } from './page.js';

/** A diagram for the page: an SVG drawn already, or Mermaid text shown as it is. */
export interface ReportDiagram {
  name: string;
  svg?: string;
  mermaid?: string;
}

export interface ReportOptions {
  /** Diagrams to show (the CLI passes the coordinator, run and expert machines as SVG). */
  diagrams?: readonly ReportDiagram[];
  /** The page's title (default: the plan's name and the run's status). */
  title?: string;
}

/** Failures listed one by one; past this, the page gives their count per code only. */
export const MAX_FAILURE_ROWS = 500;
/** Bounds of the quality report's copy (it is the plan's own value: any size, any shape). */
const QUALITY_LIMITS = Object.freeze({ depth: 8, items: 200, chars: 4_000 });
/** The page's own script is the only one that runs (a script inside a diagram's SVG does not). */
const SCRIPT_HASH = `sha256-${createHash('sha256').update(PAGE_SCRIPT).digest('base64')}`;
const STATUS_CODES = { done: 0, failed: 1, cancelled: 2, running: 3 } as const;

/** The report page of a run, from its outcome. */
export function toReportHtml(outcome: Outcome, options: ReportOptions = {}): string {
  const read = readFields(options, 'options', ['diagrams', 'title'] as const);
  const diagrams = readDiagrams(read.diagrams);
  if (read.title !== undefined && typeof read.title !== 'string')
    throw invalidOption('options.title', 'a string', read.title);
  checkOutcome(outcome);
  try {
    return render(outcome, read.title, diagrams);
  } catch (error) {
    if (isTroupeError(error)) throw error;
    // Parts of an outcome made by hand (or changed since) that the page could not read.
    throw new TroupeError(
      'E_INVALID_OPTION',
      `outcome: expected an outcome of troupe.run(), got one that could not be read (${messageOf(error)})`,
      { cause: error, details: { field: 'outcome' } },
    );
  }
}

function render(outcome: Outcome, given: string | undefined, diagrams: ReportDiagram[]): string {
  const m = outcome.metrics;
  const data = timelineData(outcome);
  const title = given ?? `troupe run ${outcome.plan}: ${outcome.status}`;
  const counts = { done: 0, failed: 0, cancelled: 0 };
  for (const r of outcome.records) counts[r.status]++;
  const parts = [
    `<!doctype html><html lang="en"><head><meta charset="utf-8">`,
    `<meta name="viewport" content="width=device-width, initial-scale=1">`,
    // No fetch of any kind: everything is inline, and the policy says so to the browser too.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src '${SCRIPT_HASH}'; img-src data:; form-action 'none'; base-uri 'none'">`,
    `<title>${esc(title)}</title><style>${PAGE_STYLE}</style></head><body>`,
    `<header><h1>${esc(title)}</h1><div class="muted">run <code>${esc(outcome.runId)}</code> · `,
    `<span class="badge ${outcome.status}">${outcome.status}</span>`,
    outcome.status === 'done'
      ? ''
      : ` at ${esc(outcome.stage)}: <code>${esc(outcome.error.code)}</code> ${esc(clip(outcome.error.message))}`,
    `</div></header><main>`,
    section(
      'Summary',
      `<div class="cards">${[
        card(ms(m.wallMs), 'wall time'),
        card(fixed(m.parallelism, 2), 'parallelism (threads busy on average)'),
        card(`${fixed(m.efficiency * 100, 1)} %`, `efficiency over ${m.threads} threads`),
        card(ms(m.runMs), 'run time on threads'),
        card(ms(m.criticalPathMs), 'critical path'),
        card(String(m.subtasks), 'subtasks'),
        card(
          `${counts.done} / ${counts.failed} / ${counts.cancelled}`,
          'done / failed / cancelled',
        ),
        card(String(outcome.attempts.length), 'attempts'),
        card(String(m.retries), 'retries'),
        card(String(m.restarts), 'expert restarts'),
        card(String(m.messages), 'messages'),
      ].join('')}</div>`,
    ),
    timeline(data.experts),
    experts(outcome),
    quality(outcome),
    failures(outcome.records),
    messages(outcome),
    diagrams.length === 0 ? '' : diagramSection(diagrams),
    `</main><script type="application/json" id="troupe-data">${scriptJson(data)}</script>`,
    `<script>${PAGE_SCRIPT}</script></body></html>\n`,
  ];
  return parts.join('');
}

function readDiagrams(value: unknown): ReportDiagram[] {
  if (value === undefined) return [];
  const expected = 'an array of { name, svg } or { name, mermaid }';
  const { items, holes } = readArray(value, 'options.diagrams', expected);
  if (holes.length > 0)
    throw invalidOption(`options.diagrams[${holes[0]}]`, 'a diagram', undefined);
  return items.map((item, i) => {
    const field = `options.diagrams[${i}]`;
    const d = readFields(item, field, ['name', 'svg', 'mermaid'] as const);
    const text = (key: 'name' | 'svg' | 'mermaid'): string | undefined => {
      const v = d[key];
      if (v !== undefined && typeof v !== 'string')
        throw invalidOption(`${field}.${key}`, 'a string', v);
      return v;
    };
    const name = text('name');
    const svg = text('svg');
    const mermaid = text('mermaid');
    if (name === undefined) throw invalidOption(`${field}.name`, 'a string', undefined);
    if ((svg === undefined) === (mermaid === undefined))
      throw invalidOption(field, 'one of svg and mermaid', item);
    if (svg !== undefined) {
      if (!SVG_START.test(svg)) throw invalidOption(`${field}.svg`, 'an SVG document', svg);
      return { name, svg };
    }
    return { name, mermaid: mermaid as string };
  });
}

/** An SVG document: its root element, after an optional XML prolog, comments and doctype. */
const SVG_START = /^\s*(<\?xml[^>]*>\s*)?(<!--[\s\S]*?-->\s*|<!DOCTYPE[^>]*>\s*)*<svg[\s>]/i;

/** An outcome of `troupe.run()`: the parts the page reads, each of the right kind. */
function checkOutcome(outcome: unknown): asserts outcome is Outcome {
  const expected = (what: string) => `${what} (an outcome of troupe.run())`;
  if (typeof outcome !== 'object' || outcome === null)
    throw invalidOption('outcome', expected('an object'), outcome);
  const o = readFields(
    outcome,
    'outcome',
    OUTCOME_KEYS,
    'an outcome',
    'E_INVALID_OPTION',
    'near-miss',
  );
  for (const key of ['records', 'attempts', 'stages', 'contributions'] as const)
    if (!Array.isArray(o[key])) throw invalidOption(`outcome.${key}`, expected('an array'), o[key]);
  if (typeof o.metrics !== 'object' || o.metrics === null)
    throw invalidOption('outcome.metrics', expected('an object'), o.metrics);
  if (!['done', 'failed', 'cancelled'].includes(o.status as string))
    throw invalidOption('outcome.status', expected('"done", "failed" or "cancelled"'), o.status);
}

const OUTCOME_KEYS = [
  'runId',
  'plan',
  'status',
  'records',
  'attempts',
  'stages',
  'contributions',
  'metrics',
] as const;

/** The timeline's data, numbers in flat columns (9 per attempt) so that 10 000 stay small. */
function timelineData(outcome: Outcome) {
  const lanes = threadLanes(outcome.attempts);
  const names = new Index();
  const experts = new Index();
  for (const a of outcome.attempts) experts.of(a.expert);
  const codes = new Index();
  const attempts: number[] = [];
  lanes.forEach((lane, k) => {
    for (const { attempt: a, startUs, durUs, queuedUs } of lane.slices)
      attempts.push(
        k,
        startUs,
        durUs,
        queuedUs,
        names.of(a.subtask),
        experts.of(a.expert),
        a.attempt,
        STATUS_CODES[a.status],
        a.code === undefined ? -1 : codes.of(a.code),
      );
  });
  const wallUs = Math.max(0, Math.round(outcome.metrics.wallMs * 1000));
  const stages = outcome.stages
    .map((s, k) => {
      const next = outcome.stages[k + 1];
      const from = Math.round(s.atMs * 1000);
      return [s.stage, from, next === undefined ? wallUs : Math.round(next.atMs * 1000)] as const;
    })
    .filter(([stage]) => stage !== 'done' && stage !== 'failed' && stage !== 'cancelled');
  return {
    wallUs,
    lanes: lanes.map((l) => (l.thread === undefined ? 'no thread' : `thread ${l.thread}`)),
    stages,
    subtasks: names.list,
    experts: experts.list,
    palette: PALETTE,
    codes: codes.list,
    attempts,
  };
}

/** The timeline's frame and legend; `experts` in the order of their colours (the data's). */
function timeline(experts: readonly string[]): string {
  const legend = experts
    .map(
      (e, k) => `<span><i style="background:${PALETTE[k % PALETTE.length]}"></i>${esc(e)}</span>`,
    )
    .join('');
  return section(
    'Timeline',
    `<p class="muted">Each attempt on the thread that ran it (failed in red, cancelled in grey). Hover for details; the wheel zooms, a drag pans, a double click resets.</p>` +
      `<div id="timeline-wrap"><canvas id="timeline"></canvas><div id="tip"></div></div>` +
      `<div class="legend">${legend}<span><i style="background:#d6336c"></i>failed</span><span><i style="background:#adb5bd"></i>cancelled</span></div>`,
  );
}

function experts(outcome: Outcome): string {
  const m = outcome.metrics;
  const rows = Object.entries(m.perExpert).sort((a, b) => b[1].runMs - a[1].runMs);
  if (rows.length === 0) return '';
  const body = rows
    .map(([name, e]) => {
      const share = m.runMs > 0 ? e.runMs / m.runMs : 0;
      const busy = m.wallMs > 0 ? e.runMs / m.wallMs : 0;
      return `<tr><td>${esc(name)}</td><td class="num">${esc(e.subtasks)}</td><td class="num">${ms(e.runMs)}</td><td class="num">${fixed(busy, 2)}</td><td style="width:25%"><div class="bar" style="width:${fixed(share * 100, 1)}%"></div></td><td class="num">${fixed(share * 100, 1)} %</td><td class="num">${ms(e.subtasks > 0 ? e.waitMs / e.subtasks : 0)}</td><td class="num">${esc(e.retries)}</td></tr>`;
    })
    .join('');
  return section(
    'Experts',
    `<table><thead><tr><th>expert</th><th class="num">subtasks</th><th class="num">run time</th><th class="num">threads busy</th><th>share of the work</th><th class="num"></th><th class="num">mean wait</th><th class="num">retries</th></tr></thead><tbody>${body}</tbody></table>`,
  );
}

function quality(outcome: Outcome): string {
  if (outcome.status !== 'done')
    return section(
      'Quality',
      `<p class="muted">No quality report: the run ended ${outcome.status} at ${esc(outcome.stage)}.</p>`,
    );
  if (outcome.quality === undefined)
    return section('Quality', `<p class="muted">The plan has no quality check.</p>`);
  return section(
    'Quality',
    `<pre>${esc(JSON.stringify(summarize(outcome.quality, QUALITY_LIMITS), null, 2))}</pre>`,
  );
}

function failures(records: readonly SubtaskRecord[]): string {
  // The failures first: the cancellations are mostly what they caused.
  const failed = [
    ...records.filter((r) => r.status === 'failed'),
    ...records.filter((r) => r.status === 'cancelled'),
  ];
  if (failed.length === 0)
    return section('Failures', `<p class="muted">Every subtask is done.</p>`);
  const byCode = new Map<string, number>();
  for (const r of failed) {
    const code = r.error?.code ?? r.status;
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }
  const codes = [...byCode]
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `<code>${esc(code)}</code> ${n}`)
    .join(' · ');
  const rows = failed
    .slice(0, MAX_FAILURE_ROWS)
    .map(
      (r) =>
        `<tr><td>${esc(r.id)}</td><td>${esc(r.status)}</td><td>${esc(r.expert ?? '—')}</td><td class="num">${esc(r.attempts)}</td><td><code>${esc(r.error?.code ?? '')}</code> ${esc(clip(r.error?.message ?? ''))}${causes(r)}</td></tr>`,
    )
    .join('');
  const more =
    failed.length > MAX_FAILURE_ROWS
      ? `<p class="muted">The first ${MAX_FAILURE_ROWS} of ${failed.length}; every record is in <code>troupe run --json</code>.</p>`
      : '';
  return section(
    'Failures',
    `<p>${failed.length} of ${records.length} subtasks not done: ${codes}</p><table><thead><tr><th>subtask</th><th>status</th><th>expert</th><th class="num">attempts</th><th>cause</th></tr></thead><tbody>${rows}</tbody></table>${more}`,
  );
}

/** The earlier attempts' failures (the last one's is the record's own). */
function causes(r: SubtaskRecord): string {
  const earlier = r.errors.slice(0, -1).filter((e) => isTroupeError(e));
  if (earlier.length === 0) return '';
  return `<div class="muted">earlier attempts: ${earlier.map((e) => `<code>${esc(e.code)}</code> ${esc(clip(e.message))}`).join('; ')}</div>`;
}

function messages(outcome: Outcome): string {
  const pairs = outcome.metrics.messagePairs;
  if (pairs.length === 0) return '';
  const rows = pairs
    .slice(0, 20)
    .map(
      (p) =>
        `<tr><td>${esc(p.from)}</td><td>${esc(p.to)}</td><td class="num">${esc(p.count)}</td></tr>`,
    )
    .join('');
  return section(
    'Messages',
    `<p>${esc(outcome.metrics.messages)} messages, ${fixed(outcome.metrics.messagesPerSubtask, 2)} per subtask.</p><table><thead><tr><th>from</th><th>to</th><th class="num">messages</th></tr></thead><tbody>${rows}</tbody></table>`,
  );
}

function diagramSection(diagrams: readonly ReportDiagram[]): string {
  const figures = diagrams
    .map(
      (d) =>
        `<figure><figcaption>${esc(d.name)}</figcaption>${d.svg !== undefined ? svgImage(d.name, d.svg) : `<pre>${esc(d.mermaid ?? '')}</pre>`}</figure>`,
    )
    .join('');
  return section('State machines', `<div class="diagrams">${figures}</div>`);
}

/**
 * An SVG as an image of its own (a data: URL): whatever the document holds (scripts, forms,
 * styles, elements named like the page's) stays inside the image, where none of it runs.
 */
function svgImage(name: string, svg: string): string {
  return `<img alt="${esc(name)}" src="data:image/svg+xml;base64,${Buffer.from(svg, 'utf8').toString('base64')}">`;
}

/** A message of the run's, cut to a length a page can show (errors may carry whole inputs). */
function clip(text: string): string {
  return text.length > MAX_MESSAGE_CHARS
    ? `${text.slice(0, MAX_MESSAGE_CHARS)}… (${text.length} characters)`
    : text;
}
const MAX_MESSAGE_CHARS = 2_000;

class Index {
  readonly list: string[] = [];
  readonly #at = new Map<string, number>();
  of(value: string): number {
    let k = this.#at.get(value);
    if (k === undefined) {
      k = this.list.length;
      this.list.push(value);
      this.#at.set(value, k);
    }
    return k;
  }
}

const section = (title: string, body: string): string =>
  `<section><h2>${esc(title)}</h2>${body}</section>`;
const card = (value: string, label: string): string =>
  `<div class="card"><b>${esc(value)}</b><span>${esc(label)}</span></div>`;
const fixed = (n: number, digits: number): string => (Number.isFinite(n) ? n.toFixed(digits) : '—');
const ms = (n: number): string =>
  !Number.isFinite(n) ? '—' : n >= 10_000 ? `${(n / 1000).toFixed(2)} s` : `${n.toFixed(1)} ms`;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

/** JSON inside a script element: no `</script>` or `<!--` can end it early. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}
