// Main-thread functions of the folder audit's plan file (audit.plan.yaml): the expert check, the
// integration into one report, and the plan's validation.
import { statSync } from 'node:fs';

export function isDigest(out) {
  return /^[0-9a-f]{64}$/.test(out.sha256) || 'not a sha256 digest';
}

/** Subtask ids are `<stage>:<file>`: one row per file, with every expert's part. */
export function integrate(contributions, input) {
  const rows = new Map();
  const who = {};
  for (const c of contributions) {
    const split = c.subtask.indexOf(':');
    const kind = c.subtask.slice(0, split);
    const file = c.subtask.slice(split + 1);
    let row = rows.get(file);
    if (row === undefined) {
      row = { file };
      rows.set(file, row);
    }
    Object.assign(row, c.output);
    who[c.expert] ??= { subtasks: 0, runMs: 0, did: [] };
    who[c.expert].subtasks++;
    who[c.expert].runMs += c.runMs;
    if (!who[c.expert].did.includes(kind)) who[c.expert].did.push(kind);
  }
  const list = [...rows.values()].sort((a, b) => (a.file < b.file ? -1 : 1));
  for (const row of list) row.bytes = statSync(`${input.dir}/${row.file}`).size;
  const sum = (key) => list.reduce((total, r) => total + (r[key] ?? 0), 0);
  return {
    dir: input.dir,
    totals: {
      files: list.length,
      bytes: sum('bytes'),
      lines: sum('lines'),
      words: sum('words'),
      gzip: sum('gzip'),
      brotli: sum('brotli'),
    },
    largest: [...list]
      .sort((a, b) => b.bytes - a.bytes)
      .slice(0, 5)
      .map((r) => ({ file: r.file, bytes: r.bytes })),
    whoDidWhat: Object.fromEntries(
      Object.entries(who).map(([name, w]) => [name, { ...w, runMs: Math.round(w.runMs) }]),
    ),
    rows: list,
  };
}

export function validate(result) {
  if (result.totals.files === 0) throw new Error('no file was audited');
  return {
    complete: result.rows.every((r) => r.sha256 && r.gzip !== undefined && r.lines !== undefined),
  };
}
