/**
 * `troupe bench --compare old.json new.json`: the comparisons both runs made, side by side, with
 * a change flagged only when the two min–max ranges do not overlap (beyond the noise).
 */
import type { Environment } from './env.js';
import { fmtSpread, type Spread } from './harness.js';
import type { CaseResult, SuiteOptions } from './types.js';

export interface BenchDocument {
  environment: Environment;
  options: SuiteOptions;
  results: Record<string, CaseResult[]>;
}

export interface ComparedLine {
  scope: string;
  case: string;
  label: string;
  before: Spread;
  after: Spread;
  /** The ranges do not overlap: up (after above before) or down; else within the noise. */
  change: 'up' | 'down' | 'none';
}

export interface CompareReport {
  lines: ComparedLine[];
  /** Comparisons in only one of the documents. */
  unmatched: string[];
  text: string;
}

export function compareDocuments(before: BenchDocument, after: BenchDocument): CompareReport {
  const lines: ComparedLine[] = [];
  const unmatched: string[] = [];
  const index = (doc: BenchDocument) => {
    const map = new Map<string, { scope: string; case: string; label: string; spread: Spread }>();
    for (const [scope, cases] of Object.entries(doc.results)) {
      for (const c of cases) {
        for (const comparison of c.comparisons) {
          map.set(`${scope}\u0000${c.name}\u0000${comparison.label}`, {
            scope,
            case: c.name,
            label: comparison.label,
            spread: comparison.spread,
          });
        }
      }
    }
    return map;
  };
  const a = index(before);
  const b = index(after);
  for (const [key, old] of a) {
    const now = b.get(key);
    if (now === undefined) {
      unmatched.push(`only in the old run: ${old.scope} / ${old.case} / ${old.label}`);
      continue;
    }
    const change =
      now.spread.min > old.spread.max ? 'up' : now.spread.max < old.spread.min ? 'down' : 'none';
    lines.push({
      scope: old.scope,
      case: old.case,
      label: old.label,
      before: old.spread,
      after: now.spread,
      change,
    });
  }
  for (const [key, now] of b) {
    if (!a.has(key))
      unmatched.push(`only in the new run: ${now.scope} / ${now.case} / ${now.label}`);
  }
  const text = [
    `old: ${describe(before.environment)}`,
    `new: ${describe(after.environment)}`,
    'a change is flagged only when the min–max ranges do not overlap',
    '',
    ...lines.map(
      (l) =>
        `${l.change === 'none' ? '  ' : l.change === 'up' ? '▲ ' : '▼ '}${l.scope} / ${l.case} / ${l.label}: ${fmtSpread(l.before)} → ${fmtSpread(l.after)}${l.change === 'none' ? '' : `  CHANGED (${l.change})`}`,
    ),
    ...(unmatched.length > 0 ? ['', ...unmatched] : []),
  ].join('\n');
  return { lines, unmatched, text };
}

function describe(env: Environment | undefined): string {
  if (env === undefined) return 'unknown machine';
  return `${env.date}, ${env.cores} cores, ${env.cpu}, Node ${env.node}${env.contended ? ', CONTENDED' : ''}`;
}
