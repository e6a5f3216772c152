// Stitches every filtered tile (ctx.deps) into one grayscale PNG and writes it. The PNG is
// encoded here: signature, IHDR, one zlib-compressed IDAT, IEND, each chunk with its CRC-32.
// Input: { tiles, out }.
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(data).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

export function encodePng(width, height, gray) {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header[8] = 8; // bit depth
  header[9] = 0; // grayscale
  const raw = Buffer.alloc((width + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width + 1)] = 0; // filter: none
    Buffer.from(gray.buffer, gray.byteOffset + y * width, width).copy(raw, y * (width + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

export default function stitch({ tiles, out }, ctx) {
  const parts = Object.values(ctx.deps);
  if (parts.length !== tiles * tiles)
    throw new Error(`stitch: expected ${tiles * tiles} tiles, got ${parts.length}`);
  const size = parts[0].size;
  const width = tiles * size;
  const image = new Uint8Array(width * width);
  for (const { item, pixels } of parts) {
    const ox = (item % tiles) * size;
    const oy = Math.floor(item / tiles) * size;
    for (let y = 0; y < size; y++)
      image.set(pixels.subarray(y * size, (y + 1) * size), (oy + y) * width + ox);
  }
  const png = encodePng(width, width, image);
  const path = resolve(out);
  writeFileSync(path, png);
  return { path, width, height: width, bytes: png.length };
}

/** The plan's integration (main thread): the picture, and who rendered how many tiles. */
export function report(contributions) {
  const picture = contributions.find((c) => c.subtask === 'stitch')?.output;
  const tilesBy = {};
  for (const c of contributions)
    if (c.needs === 'render') tilesBy[c.expert] = (tilesBy[c.expert] ?? 0) + 1;
  return {
    ...picture,
    tiles: contributions.filter((c) => c.needs === 'render').length,
    renderedBy: tilesBy,
  };
}
