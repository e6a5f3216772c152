/** Benchmark workloads: compiled next to this file, so that they ship with the package. */
export const workload = (name: string): URL => new URL(`./workloads/${name}.js`, import.meta.url);
