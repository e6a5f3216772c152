/**
 * The worker pools a user would pick instead of troupe's, beside raw Piscina in the speedup
 * suite: poolifier, tinypool and workerpool, each with the suite's threads and its own defaults
 * otherwise. They are troupe's dev dependencies: from an installed troupe, a pool that cannot be
 * loaded is left out, and the suite names it in its table and its JSON.
 */
import { fileURLToPath } from 'node:url';
import { workload } from './paths.js';
import { range } from './shared.js';

/** A pool under test: runs `n` tasks of a workload at once, all queued, and resolves at the last. */
export interface PeerPool {
  readonly name: string;
  run(workloadName: string, units: number, n: number): Promise<unknown>;
  close(): Promise<unknown>;
}

const peerModule = (name: string): string =>
  fileURLToPath(new URL(`./workloads/peers/${name}.js`, import.meta.url));

export type Loader = (threads: number, workloads: readonly string[]) => Promise<PeerPool>;

const LOADERS: Record<string, Loader> = {
  poolifier: async (threads) => {
    const { FixedThreadPool } = await import('poolifier');
    const pool = new FixedThreadPool(threads, peerModule('poolifier'));
    return {
      name: 'poolifier',
      run: (w, u, n) => Promise.all(range(n).map(() => pool.execute({ w, u }))),
      close: () => pool.destroy(),
    };
  },
  tinypool: async (threads, workloads) => {
    const { Tinypool } = await import('tinypool');
    // One pool per workload, as for raw Piscina: its default export is the task.
    const pools = new Map(
      workloads.map((w) => [
        w,
        new Tinypool({ filename: workload(w).href, minThreads: threads, maxThreads: threads }),
      ]),
    );
    return {
      name: 'tinypool',
      run: (w, u, n) => {
        const pool = pools.get(w);
        if (pool === undefined) throw new Error(`tinypool: no pool for ${w}`);
        return Promise.all(range(n).map(() => pool.run(u)));
      },
      close: () => Promise.all([...pools.values()].map((p) => p.destroy())),
    };
  },
  workerpool: async (threads) => {
    const workerpool = (await import('workerpool')).default;
    const pool = workerpool.pool(peerModule('workerpool'), {
      minWorkers: threads,
      maxWorkers: threads,
      workerType: 'thread',
    });
    return {
      name: 'workerpool',
      run: (w, u, n) => Promise.all(range(n).map(() => pool.exec('run', [w, u]))),
      close: () => Promise.resolve(pool.terminate()),
    };
  },
};

export const PEERS = Object.keys(LOADERS);

/** The pools that load, and the names (with why) of those that do not. */
export async function loadPeerPools(
  threads: number,
  workloads: readonly string[],
  loaders: Record<string, Loader> = LOADERS,
): Promise<{ pools: PeerPool[]; missing: string[] }> {
  const pools: PeerPool[] = [];
  const missing: string[] = [];
  for (const [name, load] of Object.entries(loaders)) {
    try {
      pools.push(await load(threads, workloads));
    } catch (error) {
      missing.push(
        `${name} (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`,
      );
    }
  }
  return { pools, missing };
}
