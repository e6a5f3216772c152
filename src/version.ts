import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * The installed troupe version, read from its package.json by the package's own name (it
 * exports `./package.json`): the same from the source and from dist/src/.
 */
export const VERSION: string = (require('troupe/package.json') as { version: string }).version;
