// Renders one tile of the Mandelbrot set: escape-time iterations per pixel, as bytes (0–255).
// Input: { item: tileIndex, tiles: N (per side), size: pixels per tile side, iterations }.
export default function render({ item, tiles, size, iterations }) {
  const tx = item % tiles;
  const ty = Math.floor(item / tiles);
  const pixels = new Uint8Array(size * size);
  const span = 3 / (tiles * size); // the whole picture covers x ∈ [-2.2, 0.8], y ∈ [-1.5, 1.5]
  for (let py = 0; py < size; py++) {
    const ci = -1.5 + (ty * size + py) * span;
    for (let px = 0; px < size; px++) {
      const cr = -2.2 + (tx * size + px) * span;
      let zr = 0;
      let zi = 0;
      let n = 0;
      while (n < iterations && zr * zr + zi * zi <= 4) {
        const t = zr * zr - zi * zi + cr;
        zi = 2 * zr * zi + ci;
        zr = t;
        n++;
      }
      pixels[py * size + px] =
        n === iterations ? 0 : 255 - Math.round((255 * Math.sqrt(n)) / Math.sqrt(iterations));
    }
  }
  return { item, size, pixels };
}
