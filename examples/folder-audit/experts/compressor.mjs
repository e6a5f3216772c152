// gzip and brotli (quality 5) sizes of a file.
import { readFileSync } from 'node:fs';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

// Input: { path }, or { item: { path } } when a plan file fans out over a glob.
export default function compress(input) {
  const path = input.path ?? input.item.path;
  const data = readFileSync(path);
  const gzip = gzipSync(data).length;
  const brotli = brotliCompressSync(data, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 5 },
  }).length;
  return { bytes: data.length, gzip, brotli, ratio: data.length === 0 ? 1 : brotli / data.length };
}
