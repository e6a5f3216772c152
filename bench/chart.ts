/**
 * `--chart file.svg`: the factor against threads, as one self-contained SVG (no scripts, no
 * external fonts or styles): troupe, raw Piscina and the hand-written ceiling with their min–max
 * ranges, and the ideal (factor = threads). Drawn from the scaling suite, else the speedup suite
 * (the geometric mean over its cases at each thread count).
 */
import type { BenchDocument } from './compare.js';
import type { FactorPoint } from './types.js';

interface Series {
  variant: string;
  color: string;
  points: { threads: number; median: number; min: number; max: number }[];
}

const COLORS: Record<string, string> = {
  troupe: '#d6336c',
  ceiling: '#1c7ed6',
  'raw piscina': '#f08c00',
};

function gmean(values: number[]): number {
  return Math.exp(values.reduce((sum, v) => sum + Math.log(v), 0) / values.length);
}

/** Colours of the other series (the coordinator case's measured and projected ones), in turn. */
const PALETTE = ['#2f9e44', '#7048e8', '#e8590c', '#0c8599', '#c2255c', '#5c940d'];

function seriesOf(points: FactorPoint[]): Series[] {
  const byVariant = new Map<string, Map<number, FactorPoint[]>>();
  for (const p of points) {
    let byThreads = byVariant.get(p.variant);
    if (byThreads === undefined) {
      byThreads = new Map();
      byVariant.set(p.variant, byThreads);
    }
    byThreads.set(p.threads, [...(byThreads.get(p.threads) ?? []), p]);
  }
  // A projected series takes the colour of the measured one of its size (the same text after it).
  const others = new Map<string, string>();
  const colorOf = (variant: string): string => {
    const known = COLORS[variant];
    if (known !== undefined) return known;
    const size = variant.replace(/^(measured|projected), /, '');
    let color = others.get(size);
    if (color === undefined) {
      color = PALETTE[others.size % PALETTE.length] as string;
      others.set(size, color);
    }
    return color;
  };
  return [...byVariant].map(([variant, byThreads]) => ({
    variant,
    color: colorOf(variant),
    points: [...byThreads]
      .sort((a, b) => a[0] - b[0])
      .map(([threads, ps]) => ({
        threads,
        median: gmean(ps.map((p) => p.factor.median)),
        min: gmean(ps.map((p) => p.factor.min)),
        max: gmean(ps.map((p) => p.factor.max)),
      })),
  }));
}

const esc = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** The SVG text, or undefined when the document has no factor points to draw. */
export function factorChart(document: BenchDocument): string | undefined {
  const scaling = (document.results.scaling ?? []).flatMap((c) => c.points ?? []);
  const speedup = (document.results.speedup ?? []).flatMap((c) => c.points ?? []);
  const points = scaling.length > 0 ? scaling : speedup;
  if (points.length === 0) return undefined;
  const series = seriesOf(points);
  const maxThreads = Math.max(...points.map((p) => p.threads));
  const maxFactor = Math.max(maxThreads, ...series.flatMap((s) => s.points.map((p) => p.max)));
  const width = 640;
  const height = 420;
  const left = 60;
  const right = 170;
  const top = 50;
  const bottom = 50;
  const plotWidth = width - left - right;
  const round = (n: number) => Math.round(n * 10) / 10;
  // Past 8 threads (projections to 64), threads on a log scale with a tick at each power of 2.
  const log = maxThreads > 8;
  const x = (threads: number) =>
    round(
      maxThreads === 1
        ? left + plotWidth / 2
        : log
          ? left + (Math.log2(threads) / Math.log2(maxThreads)) * plotWidth
          : left + ((threads - 1) / (maxThreads - 1)) * plotWidth,
    );
  const y = (factor: number) =>
    round(height - bottom - (factor / maxFactor) * (height - top - bottom));
  const env = document.environment;
  const title = `factor over sequential vs threads — ${scaling.length > 0 ? 'scaling suite' : 'speedup suite (geometric mean of cases)'}`;
  const subtitle = `${env.cores} cores, ${env.cpu}, Node ${env.node}, ${env.date}${env.contended ? ' — CONTENDED' : ''}`;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12" role="img">`,
    `<title>${esc(`${title}; ${subtitle}`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="${left}" y="38" fill="#495057">${esc(subtitle)}</text>`,
    // axes
    `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#212529"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#212529"/>`,
    `<text x="${(left + width - right) / 2}" y="${height - 12}" text-anchor="middle">threads</text>`,
    `<text x="16" y="${(top + height - bottom) / 2}" text-anchor="middle" transform="rotate(-90 16 ${(top + height - bottom) / 2})">factor (sequential ÷ parallel)</text>`,
  ];
  for (let t = 1; t <= maxThreads; t = log ? t * 2 : t + 1) {
    out.push(
      `<line x1="${x(t)}" y1="${height - bottom}" x2="${x(t)}" y2="${height - bottom + 5}" stroke="#212529"/>`,
      `<text x="${x(t)}" y="${height - bottom + 18}" text-anchor="middle">${t}</text>`,
    );
  }
  const step =
    maxFactor > 32 ? 8 : maxFactor > 16 ? 4 : maxFactor > 8 ? 2 : maxFactor > 4 ? 1 : 0.5;
  for (let f = 0; f <= maxFactor + 1e-9; f += step) {
    out.push(
      `<line x1="${left - 5}" y1="${y(f)}" x2="${width - right}" y2="${y(f)}" stroke="#e9ecef"/>`,
      `<text x="${left - 8}" y="${y(f) + 4}" text-anchor="end">${f}</text>`,
    );
  }
  // the ideal: factor = threads
  const ideal = Array.from({ length: maxThreads }, (_, i) => `${x(i + 1)},${y(i + 1)}`).join(' ');
  const dashed = (variant: string) => variant.startsWith('projected');
  out.push(`<polyline points="${ideal}" fill="none" stroke="#868e96" stroke-dasharray="6 4"/>`);
  const legend: { label: string; color: string; dashed?: boolean }[] = [
    { label: 'ideal (= threads)', color: '#868e96', dashed: true },
  ];
  for (const s of series) {
    const line = s.points.map((p) => `${x(p.threads)},${y(p.median)}`).join(' ');
    const dash = dashed(s.variant) ? ' stroke-dasharray="3 3"' : '';
    out.push(
      `<polyline points="${line}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`,
    );
    for (const p of s.points) {
      out.push(
        `<line x1="${x(p.threads)}" y1="${y(p.min)}" x2="${x(p.threads)}" y2="${y(p.max)}" stroke="${s.color}" stroke-width="1"/>`,
        `<circle cx="${x(p.threads)}" cy="${y(p.median)}" r="3.5" fill="${s.color}"><title>${esc(`${s.variant}, ${p.threads} thread${p.threads === 1 ? '' : 's'}: ${p.median.toFixed(2)} [${p.min.toFixed(2)}–${p.max.toFixed(2)}]`)}</title></circle>`,
      );
    }
    legend.push({ label: s.variant, color: s.color, dashed: dashed(s.variant) });
  }
  legend.forEach((item, i) => {
    const ly = top + 10 + i * 20;
    out.push(
      `<line x1="${width - right + 15}" y1="${ly}" x2="${width - right + 40}" y2="${ly}" stroke="${item.color}" stroke-width="2"${item.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${width - right + 46}" y="${ly + 4}">${esc(item.label)}</text>`,
    );
  });
  out.push(
    `<text x="${width - right + 15}" y="${top + 10 + legend.length * 20 + 10}" fill="#495057" font-size="11">${scaling.length > 0 ? 'bars: min–max of rounds' : 'bars: geometric mean of the cases’ min–max'}</text>`,
    '</svg>',
  );
  return `${out.join('\n')}\n`;
}
