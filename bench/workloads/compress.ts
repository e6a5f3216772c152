/**
 * Compression made inside the worker: gzip (level 6) and then brotli (quality 5) over `units`
 * × 4 KiB of generated text, with the synchronous zlib calls (the async ones would spread over
 * libuv's threads and make the sequential baseline parallel).
 */
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const texts = new Map<number, Buffer>();
const WORDS =
  'the quick brown fox jumps over lazy dogs while seven wizards quietly judge boxing matches'.split(
    ' ',
  );

function text(units: number): Buffer {
  let buffer = texts.get(units);
  if (buffer === undefined) {
    const parts: string[] = [];
    let seed = 7;
    let length = 0;
    while (length < units * 4096) {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      const word = WORDS[seed % WORDS.length] as string;
      parts.push(word, seed % 11 === 0 ? '\n' : ' ');
      length += word.length + 1;
    }
    buffer = Buffer.from(parts.join(''));
    texts.set(units, buffer);
  }
  return buffer;
}

export default function compress(units: number): number {
  const input = text(units);
  const gz = gzipSync(input, { level: 6 });
  const br = brotliCompressSync(input, { params: { [constants.BROTLI_PARAM_QUALITY]: 5 } });
  return gz.length + br.length;
}
