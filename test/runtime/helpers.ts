import { createTroupe, type Troupe, type TroupeOptions } from '../../dist/src/index.js';

const open: Troupe[] = [];

/** A troupe closed (with force) by `closeTroupes()` after each test. */
export function openTroupe(options: TroupeOptions): Troupe {
  const troupe = createTroupe(options);
  open.push(troupe);
  return troupe;
}

export async function closeTroupes(): Promise<void> {
  await Promise.all(open.splice(0).map((t) => t.close({ force: true })));
}
