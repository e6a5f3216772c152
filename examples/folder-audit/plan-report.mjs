// Main-thread functions of the folder audit's plan file (audit.plan.yaml): the expert check, the
// integration into one report, and the plan's validation.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { credit, plan, summarise } from './plan.mjs';

// The same checks as the library plan (plan.mjs), named here by the plan file.
export { isDigest } from './plan.mjs';

/** Subtask ids are `<stage>:<file>`: one row per file, with every expert's part. */
export function integrate(contributions, input) {
  const rows = new Map();
  const who = {};
  for (const c of contributions) {
    const split = c.subtask.indexOf(':');
    const file = c.subtask.slice(split + 1);
    let row = rows.get(file);
    if (row === undefined) {
      row = { file, bytes: statSync(join(input.dir, file)).size };
      rows.set(file, row);
    }
    Object.assign(row, c.output);
    credit(who, c, c.subtask.slice(0, split));
  }
  const list = [...rows.values()].sort((a, b) => (a.file < b.file ? -1 : 1));
  return summarise(input.dir, list, who);
}

export function validate(result) {
  return plan.validate(result);
}
