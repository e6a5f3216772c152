/** Bench fixtures live in bench/fixtures (plain .mjs: worker threads on Node 20 cannot load .ts). */
const fixtures = new URL('../../bench/fixtures/', import.meta.url);

export const fixture = (name: string): URL => new URL(`${name}.mjs`, fixtures);
