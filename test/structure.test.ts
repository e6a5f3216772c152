// The source has no import cycle, type-only imports included (docs/ARCHITECTURE.md): a file
// that needs another's types and the other its values is one module split in two, or two that
// share a third. Read from the text of src/ and bench/, as the compiler sees the imports.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE = /\.(ts|mts|cts|mjs|cjs|js)$/;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : files(path);
    return SOURCE.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

// Static imports and re-exports, `import type` too.
const STATIC = /^\s*(?:import|export)\s(?:[^'";]*?\sfrom\s*)?['"](\.{1,2}\/[^'"]+)['"]/gm;
// A dynamic import() of a literal path: a lazy load is still a dependency.
const DYNAMIC = /\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

/** The file a relative specifier names: `./x.js` is `x.ts` in the source (or `x.cts`, …). */
function target(from: string, specifier: string, known: Set<string>): string | undefined {
  const path = resolve(dirname(from), specifier);
  const stem = path.replace(/\.(c|m)?js$/, '');
  for (const candidate of [
    path,
    `${stem}.ts`,
    `${stem}.mts`,
    `${stem}.cts`,
    join(path, 'index.ts'),
  ]) {
    if (known.has(candidate)) return candidate;
  }
  return undefined;
}

function importGraph(dirs: string[]): Map<string, string[]> {
  const all = dirs.flatMap((dir) => files(join(root, dir)));
  const known = new Set(all);
  const graph = new Map<string, string[]>();
  for (const file of all) {
    const text = readFileSync(file, 'utf8');
    const to: string[] = [];
    for (const match of [...text.matchAll(STATIC), ...text.matchAll(DYNAMIC)]) {
      const found = target(file, match[1] as string, known);
      if (found !== undefined) to.push(found);
    }
    graph.set(file, to);
  }
  return graph;
}

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter++;
    stack.push(node);
    onStack.add(node);
    for (const next of graph.get(node) ?? []) {
      if (!index.has(next)) {
        visit(next);
        low.set(node, Math.min(low.get(node) as number, low.get(next) as number));
      } else if (onStack.has(next)) {
        low.set(node, Math.min(low.get(node) as number, index.get(next) as number));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component);
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found.map((component) => component.map((file) => relative(root, file)).sort());
}

describe('imports', () => {
  it('the cycle finder finds a cycle, type-only or not, and a file importing itself', () => {
    const graph = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['d']],
      ['e', ['a']],
    ]);
    expect(cycles(graph).map((c) => c.length)).toEqual([3, 1]);
    expect(STATIC.source).toContain('import|export');
    const text = "import type { A } from './a.js';\nexport { b } from '../b.js';\nimport './c.js';";
    expect([...text.matchAll(STATIC)].map((m) => m[1])).toEqual(['./a.js', '../b.js', './c.js']);
    expect([..."const m = await import('./lazy.js');".matchAll(DYNAMIC)].map((m) => m[1])).toEqual([
      './lazy.js',
    ]);
  });

  it('src/ and bench/ have no import cycle', () => {
    const graph = importGraph(['src', 'bench']);
    expect(graph.size).toBeGreaterThan(50);
    expect(cycles(graph)).toEqual([]);
  });
});
