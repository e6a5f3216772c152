/**
 * `troupe run --inspect`: a local relay between this process and the Stately inspector in a
 * browser. It serves the page that embeds the inspector (its UI loads from stately.ai) and a
 * WebSocket that page connects to, both on 127.0.0.1 only, and hands the inspector from
 * `@statelyai/inspect` an adapter that sends each event to the connected pages.
 *
 * Why not the package's own relay (`createInspectorServer`) and WebSocket client: the relay
 * listens on every interface and cannot be told a port of 0; the client retries a closed socket
 * every 5 s for ever, so a process that used it would not exit by itself. The page and the
 * messages are the package's; only the two ends are troupe's, and they close when asked.
 */
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import type { InspectionEvent, Observer } from 'xstate';
import { invalidOption } from '../errors.js';
import { readFields } from '../fields.js';
import { DEFAULT_PORT } from './port.js';

/** Messages kept for a page that connects late (the newest; older ones are dropped). */
const KEPT = 100_000;

export interface Relay {
  /** The page to open in a browser. */
  readonly url: string;
  readonly port: number;
  /** What `createTroupe({ inspect })` takes. */
  readonly inspector: { inspect: Observer<InspectionEvent> };
  /** Pages connected now. */
  readonly clients: number;
  /** Messages sent to the pages (or kept for them) so far. */
  readonly messages: number;
  /** Sends one message of the inspector's own (`troupe replay` sends a log's this way). */
  send(message: object): void;
  /** Resolves true once a page has connected, false after `timeoutMs` without one. */
  connected(timeoutMs: number): Promise<boolean>;
  /** Sends what is still pending, then closes the socket, the pages' connections and the server. */
  close(): Promise<void>;
}

/** Thrown when `@statelyai/inspect` is not installed: it is an optional peer of troupe. */
export class InspectorMissing extends Error {}

interface WsLike {
  readyState: number;
  bufferedAmount: number;
  send(data: string): void;
  terminate(): void;
}
interface WsServerLike {
  clients: Set<WsLike>;
  on(event: 'connection', listener: (socket: WsLike) => void): void;
  close(callback?: () => void): void;
}

const OPEN = 1;

export { DEFAULT_PORT } from './port.js';

/**
 * Starts the relay on 127.0.0.1 (`port` 0: any free one). Pass its `inspector` to
 * `createTroupe({ inspect })`, open its `url` in a browser, and `close()` it when done: then
 * nothing of it keeps the process alive.
 *
 * @example
 * ```ts
 * import { createTroupe } from 'troupe';
 * import { startRelay } from 'troupe/inspect';
 *
 * const relay = await startRelay({ port: 0 });
 * console.log(`open ${relay.url}`);
 * await relay.connected(30_000);
 * const troupe = createTroupe({ experts, inspect: relay.inspector });
 * // … runs …
 * await troupe.close();
 * await relay.close();
 * ```
 */
export async function startRelay(options: { port?: number } = {}): Promise<Relay> {
  const given = readFields(options, 'startRelay(options)', ['port']);
  const port = given.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65_535)
    throw invalidOption(
      'startRelay(options).port',
      'an integer from 0 (any free port) to 65535',
      port,
    );
  let createInspector: (adapter: { send(event: unknown): void }) => {
    inspect: Observer<InspectionEvent>;
  };
  let WebSocketServer: new (options: { server: Server }) => WsServerLike;
  try {
    const inspect = (await import('@statelyai/inspect')) as unknown as {
      createInspector: typeof createInspector;
    };
    createInspector = inspect.createInspector;
    // The WebSocket server the package itself uses, found from where the package is.
    const require = createRequire(import.meta.resolve('@statelyai/inspect'));
    WebSocketServer = (require('ws') as { WebSocketServer: typeof WebSocketServer })
      .WebSocketServer;
  } catch (error) {
    throw new InspectorMissing(
      `--inspect needs @statelyai/inspect, an optional peer of troupe (npm install @statelyai/inspect): ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  let bridge = '';
  const http = createServer((_request, response) => {
    response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    response.end(bridge);
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port as number, '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  const actual = (http.address() as AddressInfo).port;
  bridge = bridgePage(actual);
  const wss = new WebSocketServer({ server: http });
  const kept: string[] = [];
  let sent = 0;
  const waiting: (() => void)[] = [];
  wss.on('connection', (socket) => {
    for (const message of kept) socket.send(message);
    for (const wake of waiting.splice(0)) wake();
  });
  const broadcast = (event: unknown): void => {
    let message: string;
    try {
      message = JSON.stringify(event);
    } catch {
      return;
    }
    sent++;
    kept.push(message);
    if (kept.length > KEPT) kept.shift();
    for (const client of wss.clients) if (client.readyState === OPEN) client.send(message);
  };
  const inspector = createInspector({ send: broadcast });
  const url = `http://127.0.0.1:${actual}`;
  return {
    url,
    port: actual,
    inspector,
    get clients() {
      return wss.clients.size;
    },
    get messages() {
      return sent;
    },
    send: broadcast,
    connected(timeoutMs) {
      if (wss.clients.size > 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        const timer = setTimeout(() => resolve(false), timeoutMs);
        waiting.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
    async close() {
      // The inspector turns XState's events into messages after a timer: let it run first.
      await new Promise((resolve) => setTimeout(resolve, 20));
      // What is queued on a socket goes out first (for at most 2 s).
      const deadline = Date.now() + 2_000;
      while (
        Date.now() < deadline &&
        [...wss.clients].some((c) => c.readyState === OPEN && c.bufferedAmount > 0)
      )
        await new Promise((resolve) => setTimeout(resolve, 10));
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** The page the package's relay serves: the inspector in a frame, fed from the WebSocket. */
function bridgePage(port: number): string {
  return `<!DOCTYPE html>
<html>
<head>
  <meta charset="utf-8">
  <title>troupe — Stately inspector</title>
  <style>* { margin: 0; padding: 0; } html, body { height: 100%; } iframe { width: 100%; height: 100%; border: none; }</style>
</head>
<body>
  <iframe id="inspector" src="https://stately.ai/inspect"></iframe>
  <script>
    const iframe = document.getElementById('inspector');
    const buffer = [];
    let connected = false;
    window.addEventListener('message', (e) => {
      if (e.data && e.data.type === '@statelyai.connected') {
        connected = true;
        for (const event of buffer) iframe.contentWindow.postMessage(event, '*');
        buffer.length = 0;
      }
    });
    const ws = new WebSocket('ws://127.0.0.1:${port}');
    ws.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (connected) iframe.contentWindow.postMessage(data, '*');
      else buffer.push(data);
    };
  </script>
</body>
</html>`;
}
