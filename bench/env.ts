/** The machine and its load, printed with every result: a figure without them means nothing. */
import { readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';

export interface Environment {
  date: string;
  node: string;
  platform: string;
  cores: number;
  cpu: string;
  loadBefore: number[];
  loadAfter?: number[];
  /** CPU seconds this process and its children used during the run (all threads). */
  cpuSeconds?: number;
  /** CPU seconds the rest of the machine used during the run (Linux: /proc/stat), if known. */
  othersCpuSeconds?: number;
  wallSeconds?: number;
  /** Others used more than a quarter of a core on average during the run: figures are suspect. */
  contended?: boolean;
}

const round2 = (n: number) => Math.round(n * 100) / 100;

/** Busy CPU seconds of the whole machine, from /proc/stat (undefined off Linux). */
function machineBusySeconds(): number | undefined {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    // user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = fields;
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return undefined;
  }
}

/** CPU seconds of this process and its waited-for children (Linux: /proc/self/stat). */
function ownSeconds(): number {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    // fields[11..14] = utime stime cutime cstime (after pid and comm are cut off)
    return ((fields[11] ?? 0) + (fields[12] ?? 0) + (fields[13] ?? 0) + (fields[14] ?? 0)) / 100;
  } catch {
    const usage = process.cpuUsage();
    return (usage.user + usage.system) / 1e6;
  }
}

export function environmentBefore(): { env: Environment; finish: () => Environment } {
  const started = performance.now();
  const ownStart = ownSeconds();
  const busyStart = machineBusySeconds();
  const env: Environment = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    loadBefore: loadavg().map(round2),
  };
  return {
    env,
    finish: () => {
      const wall = (performance.now() - started) / 1000;
      const own = ownSeconds() - ownStart;
      const busyEnd = machineBusySeconds();
      const others =
        busyStart === undefined || busyEnd === undefined
          ? undefined
          : Math.max(0, busyEnd - busyStart - own);
      return {
        ...env,
        loadAfter: loadavg().map(round2),
        cpuSeconds: round2(own),
        ...(others === undefined
          ? {}
          : { othersCpuSeconds: round2(others), contended: others / wall > 0.25 }),
        wallSeconds: round2(wall),
      };
    },
  };
}

export function describeEnvironment(env: Environment): string {
  const lines = [
    `machine: ${env.cores} cores, ${env.cpu}, ${env.platform}, Node ${env.node}, ${env.date}`,
    `load average before: ${env.loadBefore.join(' ')}`,
  ];
  if (env.wallSeconds !== undefined) {
    lines.push(
      `run: ${env.wallSeconds} s wall; CPU ${env.cpuSeconds} s by the bench, ${env.othersCpuSeconds ?? '?'} s by the rest of the machine` +
        (env.contended
          ? '  → CONTENDED: other processes used the machine, figures are suspect'
          : ''),
    );
  }
  return lines.join('\n');
}
