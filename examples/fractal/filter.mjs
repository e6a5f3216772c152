// Smooths one rendered tile with a 3 × 3 box blur (its own dependency, render:<same item>, comes
// in ctx.deps). Input: { item }.
export default function filter({ item }, ctx) {
  const tile = ctx.deps[`render:${item}`];
  if (tile === undefined)
    throw new Error(`filter:${item}: render:${item} is not among its dependencies`);
  const { size, pixels } = tile;
  const out = new Uint8Array(size * size);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let sum = 0;
      let count = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const yy = y + dy;
          const xx = x + dx;
          if (yy < 0 || yy >= size || xx < 0 || xx >= size) continue;
          sum += pixels[yy * size + xx];
          count++;
        }
      }
      out[y * size + x] = Math.round(sum / count);
    }
  }
  return { item, size, pixels: out };
}
