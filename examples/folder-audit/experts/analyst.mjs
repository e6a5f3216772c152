// Lines, words and the most frequent terms of a text file.
import { readFileSync } from 'node:fs';

const TERM = /[A-Za-z_][A-Za-z0-9_]{2,}/g;

// Input: { path, top? }, or { item: { path }, top? } when a plan file fans out over a glob.
export default function analyse(input) {
  const path = input.path ?? input.item.path;
  const top = input.top ?? 5;
  const text = readFileSync(path, 'utf8');
  let lines = text.length === 0 ? 0 : 1;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) lines++;
  const counts = new Map();
  let words = 0;
  for (const match of text.matchAll(TERM)) {
    words++;
    const term = match[0].toLowerCase();
    counts.set(term, (counts.get(term) ?? 0) + 1);
  }
  const terms = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top);
  return { lines, words, terms };
}
