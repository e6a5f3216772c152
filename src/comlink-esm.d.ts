// comlink's ES module build, imported directly: importing the package root from ESM loads its
// UMD build through Node's CommonJS interop, which costs ~4 MiB of RSS (measured with
// bench/rss-probe). The build ships no .d.mts, so its types are the package's own.
declare module 'comlink/dist/esm/comlink.mjs' {
  export * from 'comlink';
}
