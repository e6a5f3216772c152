// The folder audit as a troupe plan: three experts, three subtasks per file, one report.
import { readdirSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { defineExpert } from 'troupe';

const here = (name) => new URL(`./experts/${name}`, import.meta.url);

/** The hasher's check of each output, on the main thread. */
export function isDigest(out) {
  return /^[0-9a-f]{64}$/.test(out.sha256) || 'not a sha256 digest';
}

export const experts = [
  defineExpert({
    name: 'hasher',
    skills: { integrity: 3 },
    module: here('hasher.mjs'),
    concurrency: 16,
    validate: isDigest,
  }),
  defineExpert({
    name: 'compressor',
    skills: { compression: 4 },
    module: here('compressor.mjs'),
    concurrency: 16,
  }),
  defineExpert({
    name: 'analyst',
    skills: { text: 3 },
    module: here('analyst.mjs'),
    concurrency: 16,
  }),
];

/** The file kinds audited, by extension. */
export const TEXT = new Set([
  '.js',
  '.mjs',
  '.cjs',
  '.ts',
  '.mts',
  '.cts',
  '.json',
  '.md',
  '.txt',
  '.yml',
  '.yaml',
  '.css',
  '.html',
  '.map',
  '.tsx',
  '.jsx',
]);

/** Text files under `dir`, in a stable order, within the bounds. */
export function listFiles(dir, { maxFiles = 2000, maxBytes = 64 * 2 ** 20 } = {}) {
  const files = [];
  let bytes = 0;
  const walk = (at) => {
    let entries;
    try {
      entries = readdirSync(at, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    } catch {
      return;
    }
    for (const entry of entries) {
      if (files.length >= maxFiles) return;
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && TEXT.has(extname(entry.name))) {
        const size = statSync(path).size;
        if (size === 0 || bytes + size > maxBytes) continue;
        bytes += size;
        files.push({ path, size });
      }
    }
  };
  walk(dir);
  return files;
}

/** The plan: `input` is `{ dir, files }` (files from listFiles). */
export const plan = {
  name: 'folder-audit',
  analyze: ({ files }) =>
    files.flatMap(({ path }, i) => [
      { id: `hash:${i}`, needs: 'integrity', complexity: 2, input: { path } },
      { id: `compress:${i}`, needs: 'compression', complexity: 3, input: { path } },
      { id: `text:${i}`, needs: 'text', complexity: 2, input: { path, top: 5 } },
    ]),
  integrate: (contributions, { dir, files }) => report(contributions, dir, files),
  validate: (result) => {
    if (result.totals.files === 0) throw new Error('no file was audited');
    return {
      complete: result.rows.every((r) => r.sha256 && r.gzip !== undefined && r.lines !== undefined),
    };
  },
};

function report(contributions, dir, files) {
  const rows = files.map(({ path, size }) => ({ file: relative(dir, path), bytes: size }));
  const who = {};
  for (const c of contributions) {
    const [kind, i] = c.subtask.split(':');
    Object.assign(rows[Number(i)], c.output);
    credit(who, c, kind);
  }
  return summarise(dir, rows, who);
}

/** Counts a contribution for its expert: subtasks, run time, and the kinds of work it did. */
export function credit(who, contribution, kind) {
  who[contribution.expert] ??= { subtasks: 0, runMs: 0, kinds: new Set() };
  const w = who[contribution.expert];
  w.subtasks++;
  w.runMs += contribution.runMs;
  w.kinds.add(kind);
}

/** The report from one row per file (bytes and every expert's part) and who did what. */
export function summarise(dir, rows, who) {
  const sum = (key) => rows.reduce((total, r) => total + (r[key] ?? 0), 0);
  const terms = new Map();
  for (const r of rows)
    for (const [term, n] of r.terms ?? []) terms.set(term, (terms.get(term) ?? 0) + n);
  return {
    dir,
    totals: {
      files: rows.length,
      bytes: sum('bytes'),
      lines: sum('lines'),
      words: sum('words'),
      gzip: sum('gzip'),
      brotli: sum('brotli'),
    },
    largest: [...rows]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 5)
      .map((r) => ({ file: r.file, bytes: r.bytes })),
    leastCompressible: [...rows]
      .filter((r) => r.bytes >= 1024)
      .sort((a, b) => b.ratio - a.ratio)
      .slice(0, 5)
      .map((r) => ({
        file: r.file,
        bytes: r.bytes,
        brotliRatio: Math.round(r.ratio * 1000) / 1000,
      })),
    topTerms: [...terms].sort((a, b) => b[1] - a[1]).slice(0, 10),
    whoDidWhat: Object.fromEntries(
      Object.entries(who).map(([name, w]) => [
        name,
        { subtasks: w.subtasks, runMs: Math.round(w.runMs), did: [...w.kinds] },
      ]),
    ),
    rows,
  };
}
