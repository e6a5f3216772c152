import { payloadBytes as oldPB } from '/work/main/dist/limits.js';
import { payloadBytes as newPB } from './dist/limits.js';
const cases = {
  flat: { op: 'echo', value: 42, path: '/tmp/some/file.txt', n: 3 },
  nested: { a: { b: { c: [1, 2, 3] }, d: 'x'.repeat(100) }, e: [{ f: 1 }, { g: 2 }] },
  arr1k: Array.from({ length: 1000 }, (_, i) => i),
  objs1k: Array.from({ length: 1000 }, (_, i) => ({ id: i, name: `n${i}` })),
};
const L = 64 * 1024 * 1024;
for (const [name, v] of Object.entries(cases)) {
  if (oldPB(v, L) !== newPB(v, L)) console.log('DIFF', name, oldPB(v, L), newPB(v, L));
  const N = name.includes('1k') ? 20000 : 1000000;
  const res = { old: [], new: [] };
  for (let r = 0; r < 7; r++) for (const [k, f] of [['old', oldPB], ['new', newPB]]) {
    const t = process.hrtime.bigint(); for (let i = 0; i < N; i++) f(v, L); res[k].push(Number(process.hrtime.bigint() - t) / N);
  }
  const med = (a) => a.sort((x, y) => x - y)[3];
  console.log(name, 'old ns', med(res.old).toFixed(0), 'new ns', med(res.new).toFixed(0));
}
