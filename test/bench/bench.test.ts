// The benchmark tooling: the Amdahl fit, --compare, the SVG chart, the inline baseline of a
// user's suite, and `troupe bench` itself in a child process (tiny sizes: this checks that it
// works, never how fast anything is).
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { factorChart } from '../../dist/bench/chart.js';
import { type BenchDocument, compareDocuments } from '../../dist/bench/compare.js';
import { loadPeerPools, PEERS } from '../../dist/bench/peers.js';
import { amdahlSerialFraction, uslFit } from '../../dist/bench/suites/scaling.js';
import { loadUserSuite, runInline } from '../../dist/bench/suites/user.js';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../../dist/src/cli/bin.js', import.meta.url));
const exampleSuite = fileURLToPath(
  new URL('../../examples/bench-suite/suite.mjs', import.meta.url),
);
const dir = mkdtempSync(join(tmpdir(), 'troupe-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const amdahl = (s: number, t: number) => 1 / (s + (1 - s) / t);
const spread = (median: number, min = median, max = median) => ({ median, min, max });

function doc(comparisons: Record<string, ReturnType<typeof spread>>): BenchDocument {
  return {
    environment: {
      date: 'd',
      node: 'v20',
      platform: 'linux',
      cores: 2,
      cpu: 'cpu',
      loadBefore: [0],
    },
    options: { rounds: 9, quick: false, threads: 2, threadList: [2], cores: 2 },
    results: {
      speedup: [
        {
          name: 'case',
          medians: {},
          samples: {},
          comparisons: Object.entries(comparisons).map(([label, s]) => ({ label, spread: s })),
          points: [
            { variant: 'troupe', threads: 1, factor: spread(0.95, 0.9, 1) },
            { variant: 'troupe', threads: 2, factor: spread(1.8, 1.7, 1.9) },
            { variant: 'ceiling', threads: 2, factor: spread(1.95, 1.9, 2) },
          ],
        },
      ],
    },
  };
}

describe('Amdahl fit', () => {
  it('recovers the serial fraction from exact points', () => {
    const points = [1, 2, 3, 4].map((threads) => ({ threads, factor: amdahl(0.1, threads) }));
    expect(amdahlSerialFraction(points)).toBeCloseTo(0.1, 6);
  });

  it('is not made from fewer than 3 points', () => {
    expect(
      amdahlSerialFraction([
        { threads: 1, factor: 1 },
        { threads: 2, factor: 1.9 },
      ]),
    ).toBe(undefined);
  });
});

describe('the pools beside troupe in the speedup suite', () => {
  it('are poolifier, tinypool and workerpool; one that cannot be loaded is named, with why', async () => {
    expect(PEERS).toEqual(['poolifier', 'tinypool', 'workerpool']);
    const here = { name: 'here', run: async () => 0, close: async () => {} };
    const { pools, missing } = await loadPeerPools(2, ['sha256'], {
      here: async () => here,
      gone: async () => {
        throw new Error("Cannot find package 'gone'\nRequire stack: ...");
      },
    });
    expect(pools).toEqual([here]);
    expect(missing).toEqual(["gone (Cannot find package 'gone')"]);
  });
});

describe('USL fit', () => {
  it('recovers σ and κ from exact points', () => {
    const usl = (t: number) => t / (1 + 0.05 * (t - 1) + 0.002 * t * (t - 1));
    const fit = uslFit([1, 2, 4, 8].map((threads) => ({ threads, factor: usl(threads) })));
    expect(fit?.sigma).toBeCloseTo(0.05, 6);
    expect(fit?.kappa).toBeCloseTo(0.002, 6);
  });

  it('is not made from fewer than 3 points', () => {
    expect(
      uslFit([
        { threads: 1, factor: 1 },
        { threads: 2, factor: 1.9 },
      ]),
    ).toBe(undefined);
  });
});

describe('--compare', () => {
  it('flags a change only when the min–max ranges do not overlap', () => {
    const before = doc({ a: spread(1, 0.9, 1.1), b: spread(1, 0.9, 1.1), c: spread(1, 0.9, 1.1) });
    const after = doc({ a: spread(1.05, 1.0, 1.2), b: spread(1.5, 1.3, 1.7), d: spread(2) });
    const report = compareDocuments(before, after);
    const change = Object.fromEntries(report.lines.map((l) => [l.label, l.change]));
    expect(change).toEqual({ a: 'none', b: 'up' });
    expect(report.unmatched).toEqual([
      'only in the old run: speedup / case / c',
      'only in the new run: speedup / case / d',
    ]);
    expect(report.text).toMatch(/CHANGED \(up\)/);
  });
});

describe('--chart', () => {
  it('draws each variant, its min–max bars and the ideal line as a self-contained SVG', () => {
    const svg = factorChart(doc({})) as string;
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).not.toMatch(/<script|href=/);
    // the ideal (dashed) and one line per variant
    expect(svg.match(/<polyline/g)).toHaveLength(3);
    expect(svg).toMatch(/troupe, 2 threads: 1\.80 \[1\.70–1\.90\]/);
    // every opened element is closed
    const opened = (svg.match(/<(?!\/)[a-z]+[^>]*[^/]>/g) ?? []).length;
    const closed = (svg.match(/<\/[a-z]+>/g) ?? []).length;
    expect(opened).toBe(closed);
  });

  it('has nothing to draw without factor points', () => {
    expect(factorChart({ ...doc({}), results: { pool: [] } })).toBe(undefined);
  });
});

describe('a user suite', () => {
  it('the inline baseline runs the plan on the main thread in dependency order; ctx.send throws there', async () => {
    const suite = await loadUserSuite(exampleSuite);
    type Handler = (input: unknown, ctx: unknown) => unknown;
    const load = async (file: string) =>
      (
        (await import(new URL(`../../examples/bench-suite/${file}`, import.meta.url).href)) as {
          default: Handler;
        }
      ).default;
    const hasher = await load('hasher.mjs');
    const summary = await load('summary.mjs');
    const handlers = new Map<string, (input: unknown, ctx: unknown) => unknown>([
      ['hasher', hasher],
      ['summary', summary],
    ]);
    const small = { ...suite, input: { chunks: 3, kib: 1 } };
    const result = await runInline(small, handlers);
    expect(result).toMatch(/^[0-9a-f]{64}$/);
    const talker = {
      ...small,
      plan: { analyze: () => [{ id: 'x', needs: 'hash', input: null }] },
    };
    const noisy = new Map([
      [
        'hasher',
        (_i: unknown, ctx: unknown) =>
          (ctx as { send: (t: string, m: unknown) => void }).send('summary', 1),
      ],
    ]);
    await expect(runInline(talker, noisy)).rejects.toMatchObject({ code: 'E_NO_RECIPIENT' });
  });

  it('a suite file without experts is refused with the export named', async () => {
    const file = join(dir, 'empty-suite.mjs');
    writeFileSync(file, 'export const plan = { analyze: () => [] };\n');
    await expect(loadUserSuite(file)).rejects.toThrow(/export "experts"/);
  });
});

describe('troupe bench', () => {
  it('runs a suite and writes one JSON document with the machine and every sample', async () => {
    const out = join(dir, 'dag.json');
    const { stdout } = await run(
      process.execPath,
      [bin, 'bench', '--scope', 'dag', '--quick', '--rounds', '1', '--json', '--out', out],
      { timeout: 120_000 },
    );
    const document = JSON.parse(stdout);
    expect(document.environment.cores).toBeGreaterThan(0);
    expect(document.results.dag).toHaveLength(2);
    expect(document.results.dag[0].samples.troupe).toHaveLength(1);
    expect(JSON.parse(readFileSync(out, 'utf8')).results.dag).toHaveLength(2);
    const { stdout: compared } = await run(process.execPath, [bin, 'bench', '--compare', out, out]);
    expect(compared).toMatch(/a change is flagged only when the min–max ranges do not overlap/);
    expect(compared).not.toMatch(/CHANGED/);
  });

  it('runs a user suite', async () => {
    const { stdout } = await run(
      process.execPath,
      [bin, 'bench', '--suite', exampleSuite, '--quick', '--rounds', '1', '--threads', '2'],
      { timeout: 120_000 },
    );
    expect(stdout).toMatch(/your suite: hash 32 buffers/);
    expect(stdout).toMatch(/factor: troupe 2 threads \(inline ÷ troupe\)/);
  });

  it('bad flags exit 2 with a message', async () => {
    await expect(run(process.execPath, [bin, 'bench', '--scope', 'nope'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--scope: expected one of speedup, scaling, audit, dag'),
    });
    await expect(run(process.execPath, [bin, 'bench', '--threads', '0'])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--threads: expected positive integers'),
    });
    await expect(
      run(process.execPath, [bin, 'bench', '--compare', 'one.json']),
    ).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringContaining('--compare: expected two files'),
    });
  });
});
