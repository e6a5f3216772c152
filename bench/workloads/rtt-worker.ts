/**
 * The baselines of ctx.ask: a raw postMessage round trip and a Comlink call, each to an echo on
 * the main thread, measured on this thread. The main thread sends { raw, comlink } ports first.
 */
import { type MessagePort, parentPort } from 'node:worker_threads';
import { type Remote, wrap } from 'comlink/dist/esm/comlink.mjs';

let raw: MessagePort | undefined;
let remote: Remote<{ echo: (value: unknown) => unknown }> | undefined;

function median(times: Float64Array): number {
  times.sort();
  return (times[times.length >> 1] as number) * 1000;
}

async function rawRoundTrips(port: MessagePort, n: number): Promise<number> {
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await new Promise((resolve) => {
      port.once('message', resolve);
      port.postMessage(i);
    });
    times[i] = performance.now() - start;
  }
  return median(times);
}

async function comlinkRoundTrips(
  echo: Remote<{ echo: (value: unknown) => unknown }>,
  n: number,
): Promise<number> {
  const times = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const start = performance.now();
    await echo.echo(i);
    times[i] = performance.now() - start;
  }
  return median(times);
}

parentPort?.on('message', async (message) => {
  if (message.raw !== undefined) {
    raw = message.raw as MessagePort;
    remote = wrap(message.comlink);
    parentPort?.postMessage('ready');
    return;
  }
  if (raw === undefined || remote === undefined) throw new Error('rtt-worker: no ports yet');
  const p50 =
    message.kind === 'raw'
      ? await rawRoundTrips(raw, message.n)
      : await comlinkRoundTrips(remote, message.n);
  parentPort?.postMessage(p50);
});
