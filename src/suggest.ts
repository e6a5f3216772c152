/**
 * "Did you mean": the known name closest to a mistyped one, for error messages that refuse an
 * unknown option key, subtask field or command-line flag.
 */

/**
 * Edit distance with adjacent transpositions (optimal string alignment): `concurency` is one
 * edit from `concurrency`, `afer` one from `after`, `thread` one from `threads`.
 */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(
        (d[(i - 1) * cols + j] as number) + 1,
        (d[i * cols + j - 1] as number) + 1,
        (d[(i - 1) * cols + j - 1] as number) + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, (d[(i - 2) * cols + j - 2] as number) + 1);
      d[i * cols + j] = best;
    }
  }
  return d[rows * cols - 1] as number;
}

/**
 * The known name closest to `name`, if one is close enough to be what was meant: within a third
 * of the longer name's length in edits (at least 2), or the same ignoring case and separators
 * (`max_queue` → `maxQueue`). Ties go to the first in `known`.
 */
export function closest(name: string, known: Iterable<string>): string | undefined {
  const folded = fold(name);
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of known) {
    if (fold(candidate) === folded) return candidate;
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    const limit = Math.max(2, Math.floor(Math.max(name.length, candidate.length) / 3));
    if (distance <= limit && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** `; did you mean "x"?`, or nothing when no known name is close. */
export function didYouMean(name: string, known: Iterable<string>, quote = '"'): string {
  const match = closest(name, known);
  return match === undefined ? '' : `; did you mean ${quote}${match}${quote}?`;
}

function fold(name: string): string {
  return name.toLowerCase().replace(/[-_\s]/g, '');
}
