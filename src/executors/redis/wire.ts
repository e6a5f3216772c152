/**
 * What the coordinator and `troupe worker` processes say to each other through Redis, and how:
 * the keys under a prefix, the messages on each side's stream, the job's data, the URL read
 * once with its secret kept out of every message, and the optional peers (bullmq, ioredis)
 * loaded only when asked for. Shared by both sides (executor.ts, worker.ts).
 *
 * Work travels as BullMQ jobs, one queue per expert (`<prefix>:e.<expert>`), so that a worker
 * takes only the work of the experts it serves. Everything else travels on Redis streams,
 * which keep what was written until it is read: a coordinator's inbox (claims, `ctx` calls,
 * results) and a worker's inbox (go or skip, `ctx` answers, cancels). Values are V8-serialized,
 * the structured clone that threads use, so a value that can reach a thread can reach a worker.
 */
import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { deserialize, serialize } from 'node:v8';
import { describe, invalidOption, messageOf, TroupeError, type WireError } from '../../errors.js';
import { readEntries } from '../../fields.js';
import type { ContextOp } from '../../pool/protocol.js';
import { NAME_PATTERN } from '../../validate.js';

/** The default prefix of every key: BullMQ's queues and troupe's own streams. */
export const DEFAULT_PREFIX = 'troupe';
/** What a prefix expects: no ':' (Redis Cluster hash tags and BullMQ's own separator). */
export const PREFIX = 'a name of letters, digits, "_", "-" or "." starting with a letter';

/** A job's name in BullMQ: what its worker's local pool runs. */
export type JobKind = 'run' | 'probe' | 'message';

/** The keys of one prefix. */
export class Keys {
  readonly prefix: string;
  constructor(prefix: string) {
    this.prefix = prefix;
  }
  /** The BullMQ queue of an expert's work (under the BullMQ prefix `prefix`). */
  queue(expert: string): string {
    return `e.${expert}`;
  }
  /** A coordinator's inbox: claims, `ctx` calls and results from the workers. */
  coordinator(id: string): string {
    return `${this.prefix}:_:c:${id}`;
  }
  /** A worker's inbox: go or skip, `ctx` answers and cancels from coordinators. */
  worker(id: string): string {
    return `${this.prefix}:_:w:${id}`;
  }
  /** The hash of live workers: id → {@link WorkerEntry} as JSON. */
  get workers(): string {
    return `${this.prefix}:_:workers`;
  }
  /** The hash of live coordinators: id → until when (epoch ms) it counts as alive. */
  get coordinators(): string {
    return `${this.prefix}:_:coordinators`;
  }
}

/**
 * How long a coordinator counts as alive past its last heartbeat, ms: long, so that one whose
 * event loop is held up for a while is not taken for gone (its workers would drop its jobs).
 */
export const COORDINATOR_TTL_MS = 30_000;

/** A worker's entry in the registry, refreshed while it lives. */
export interface WorkerEntry {
  id: string;
  threads: number;
  experts: string[];
  pid: number;
  host: string;
  /** Until when (epoch ms) it counts as alive unless refreshed. */
  until: number;
}

/** The data of a job (JSON, as BullMQ keeps it): who sent it and the V8 bytes of the rest. */
export interface JobData {
  /** The coordinator's id: where claims, calls and the result go. */
  c: string;
  /** The payload ({@link JobPayload}), V8-serialized, base64. */
  p: string;
  /** The payload limit in bytes, the coordinator's: the worker refuses outputs above it. */
  l: number;
}

export interface JobPayload {
  kind: JobKind;
  input: unknown;
  context: { task?: Record<string, unknown>; deps?: Record<string, unknown> } | undefined;
  timeoutMs: number | undefined;
  requires?: string[] | undefined;
  from?: string | undefined;
}

/** Worker → coordinator. `k` is the job's key (its BullMQ id), `w` the worker's id. */
export type ToCoordinator =
  /** `a`: claimed ahead of the threads of the pool that would run it (it waits for one). */
  | { t: 'claim'; k: string; w: string; a?: 1 }
  /** A job claimed and not started, given back to its queue: a later claim is not a stall. */
  | { t: 'back'; k: string; w: string }
  | { t: 'ctx'; k: string; w: string; id: number; op: ContextOp; args: unknown[]; thread: number }
  | {
      t: 'end';
      k: string;
      w: string;
      ok: boolean;
      v?: unknown;
      e?: WireError;
      runMs: number;
      thread: number;
    };

/** Coordinator → worker. */
export type ToWorker =
  | { t: 'go'; k: string }
  | { t: 'skip'; k: string }
  /** Claimed ahead while another worker has a thread free: give it back unstarted. */
  | { t: 'back'; k: string }
  | { t: 'cancel'; k: string }
  /** Give back this job taken ahead, if it has not started: another worker has a thread free. */
  | { t: 'recall'; k: string }
  | { t: 'ctxr'; id: number; ok: boolean; v?: unknown; e?: WireError };

/** V8 bytes of a value (the structured clone threads use); E_NOT_CLONEABLE naming `what`. */
export function encode(value: unknown, what: string): Buffer {
  try {
    return serialize(value);
  } catch (error) {
    throw new TroupeError(
      'E_NOT_CLONEABLE',
      `${what} cannot be sent through Redis: ${describe(error)}`,
      { cause: error },
    );
  }
}

export function decode(bytes: Buffer | Uint8Array): unknown {
  return deserialize(bytes);
}

/** A value's serialized size past `limit`: E_TOO_LARGE naming `what`. Never truncated. */
export function tooLarge(what: string, bytes: number, limit: number): TroupeError {
  return new TroupeError(
    'E_TOO_LARGE',
    `${what} is ${bytes} bytes serialized, over the Redis executor's maxPayloadBytes (${limit})`,
    { details: { bytes, limit } },
  );
}

/** A Redis connection as given, read once: what to connect to, and how to name it safely. */
export interface Connection {
  /** The URL as given, secret included: only ever handed to ioredis. */
  readonly url: string;
  /** The URL with its password replaced by `***`: for logs and errors. */
  readonly safe: string;
  readonly tls: Record<string, unknown> | undefined;
}

/**
 * Reads `redis://[user:password@]host[:port][/db]` or `rediss://` (TLS). The password is never
 * put in a message: an error names the URL with `***` in its place.
 */
export function readConnection(value: unknown, field: string, tls?: unknown): Connection {
  const expected = 'a redis:// or rediss:// URL';
  if (typeof value !== 'string') throw invalidOption(field, expected, redactValue(value));
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw invalidOption(field, expected, redact(value));
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
    throw invalidOption(field, expected, redact(value));
  if (parsed.hostname === '') throw invalidOption(field, `${expected} with a host`, redact(value));
  const tlsField = field.replace(/connection$/, 'tls');
  const expectedTls = 'an object of TLS options';
  if (tls !== undefined && (tls === null || typeof tls !== 'object' || Array.isArray(tls)))
    throw invalidOption(tlsField, expectedTls, tls);
  // Read once, here (a proxy or a throwing getter is refused naming the field), into an object
  // of our own: ioredis never reads the user's.
  const copy =
    tls === undefined
      ? undefined
      : (Object.fromEntries(readEntries(tls, tlsField, expectedTls)) as Record<string, unknown>);
  return { url: value, safe: redact(value), tls: copy };
}

/** A URL with its password (and a user-only secret) replaced by `***`. Never throws. */
export function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    else if (parsed.username !== '') parsed.username = '***';
    return parsed.href;
  } catch {
    // Not a URL: whatever sits between "//" and "@" may be a secret.
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

function redactValue(value: unknown): unknown {
  return typeof value === 'string' ? redact(value) : value;
}

/** Removes every occurrence of the secret parts of `connection` from `text`. */
export function scrub(text: string, connection: Connection): string {
  let out = text.split(connection.url).join(connection.safe);
  try {
    const { password, username } = new URL(connection.url);
    for (const secret of [password, decodeURIComponent(password), username])
      if (secret.length >= 3) out = out.split(secret).join('***');
  } catch {
    // a URL that parsed once parses again
  }
  return out;
}

/** A prefix for keys: a name (no ':'), checked. */
export function readPrefix(value: unknown, field: string): string {
  if (value === undefined) return DEFAULT_PREFIX;
  if (typeof value !== 'string' || !NAME_PATTERN.test(value) || value.length > 64)
    throw invalidOption(field, `${PREFIX}, at most 64 characters`, value);
  return value;
}

/** The optional peers, loaded when a Redis executor or worker is made. */
export interface Peers {
  bullmq: typeof import('bullmq');
  Redis: typeof import('ioredis').Redis;
  /** ioredis's connector, whose sockets never leave an error unheard (see loadPeers). */
  Connector: unknown;
}

interface ConnectorClass {
  new (options: unknown): { connect(emitter: unknown): Promise<NodeJS.EventEmitter> };
}

let peers: Peers | undefined;

/** bullmq and ioredis, or E_INVALID_OPTION saying how to install them. */
export function loadPeers(field: string): Peers {
  if (peers !== undefined) return peers;
  const require = createRequire(import.meta.url);
  const load = (name: string): unknown => {
    try {
      return require(name);
    } catch (error) {
      throw new TroupeError(
        'E_INVALID_OPTION',
        `${field}: needs bullmq and ioredis, optional peers of troupe (npm install bullmq ioredis); ${name} could not be loaded`,
        { cause: error, details: { field } },
      );
    }
  };
  const bullmq = load('bullmq') as Peers['bullmq'];
  const ioredis = load('ioredis') as { Redis: Peers['Redis'] };
  // ioredis hears a socket's errors with `once` (redis/ioredis#1183): a TLS handshake that fails
  // can emit a second error (the server's alert), which would then crash the process. Each
  // socket gets a listener of its own, for the whole of its life; ioredis still sees the first
  // error, and the close that follows.
  const Standalone = (
    load('ioredis/built/connectors/StandaloneConnector') as { default: ConnectorClass }
  ).default;
  class Connector extends Standalone {
    override connect(emitter: unknown): Promise<NodeJS.EventEmitter> {
      return super.connect(emitter).then((stream) => {
        stream.on('error', () => {});
        return stream;
      });
    }
  }
  peers = { bullmq, Redis: ioredis.Redis, Connector };
  return peers;
}

/**
 * Options of an ioredis connection to `connection`. `blocking`: it serves BullMQ's workers or a
 * blocking read (commands wait for a reconnect instead of failing).
 */
export function redisOptions(connection: Connection, blocking: boolean): Record<string, unknown> {
  return {
    Connector: loadPeers('redisExecutor').Connector,
    lazyConnect: false,
    // Never more than a second between tries: a Redis that comes back is used again soon.
    retryStrategy: (times: number) => Math.min(times * 100, 1_000),
    maxRetriesPerRequest: blocking ? null : 1,
    // The producer side fails at once while Redis is away (BullMQ's advice); blocking readers wait.
    enableOfflineQueue: blocking,
    connectTimeout: 5_000,
    ...(connection.tls === undefined ? {} : { tls: connection.tls }),
  };
}

/**
 * Resolves once `client` is ready; rejects with the last connection error after `timeoutMs`
 * (ioredis retries meanwhile). BullMQ may start the connection itself: this only watches it.
 */
export function whenReady(
  client: { status: string } & Pick<EventEmitter, 'on' | 'once' | 'off'>,
  timeoutMs: number,
): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    let last: unknown = new Error(`not ready within ${timeoutMs} ms`);
    const onError = (error: unknown) => {
      last = error;
    };
    const done = (error?: unknown) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      client.off('error', onError);
      client.off('end', onEnd);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onReady = () => done();
    const onEnd = () => done(last);
    const timer = setTimeout(() => done(last), timeoutMs);
    client.on('error', onError);
    client.once('ready', onReady);
    client.once('end', onEnd);
  });
}

/**
 * Connects once and PINGs: resolves if Redis answers within `timeoutMs`, else rejects
 * E_UNAVAILABLE naming the URL without its password (a wrong password is refused the same way).
 */
export async function checkReachable(
  connection: Connection,
  timeoutMs: number,
  who: string,
): Promise<void> {
  const { Redis } = loadPeers(who);
  const probe = new Redis(connection.url, {
    ...redisOptions(connection, true),
    connectTimeout: timeoutMs,
    retryStrategy: () => null,
  } as never);
  probe.on('error', () => {});
  try {
    await whenReady(probe, timeoutMs);
    await probe.ping();
  } catch (error) {
    throw new TroupeError(
      'E_UNAVAILABLE',
      `${who}: Redis at ${connection.safe} cannot be reached (${scrub(messageOf(error), connection)})`,
      { details: { redis: connection.safe } },
    );
  } finally {
    probe.disconnect();
  }
}

type RedisClient = InstanceType<Peers['Redis']>;

/** How a side reads its inbox stream (see {@link readInbox}). */
export interface InboxReader {
  /** The blocking connection that reads, and the one that deletes what was read. */
  reader: RedisClient;
  cmd: RedisClient;
  key: string;
  blockMs: number;
  /** Whether to read on. (A reader disconnected ends the loop too.) */
  going: () => boolean;
  onMessage: (message: unknown) => void;
  /** A read failed (Redis away, most likely); the loop tries again 100 ms later. */
  onError: (error: unknown) => void;
  /** A read came back (Redis is there). */
  onRead: () => void;
}

/**
 * Reads a side's own stream in order until `going()` says stop: each entry is decoded and
 * handed on (an entry that does not decode is dropped), then deleted, a batch at a time. The
 * stream is new (its id is fresh), so reading starts from its first entry.
 */
export async function readInbox(inbox: InboxReader): Promise<void> {
  const { reader, cmd, key } = inbox;
  let last = '0-0';
  while (inbox.going()) {
    let reply: [Buffer, [Buffer, Buffer[]][]][] | null | undefined;
    try {
      reply = (await reader.xreadBuffer(
        'COUNT',
        1_000,
        'BLOCK',
        inbox.blockMs,
        'STREAMS',
        key,
        last,
      )) as typeof reply;
    } catch (error) {
      if (!inbox.going() || reader.status === 'end') return;
      inbox.onError(error);
      await new Promise((resolve) => setTimeout(resolve, 100));
      continue;
    }
    inbox.onRead();
    if (reply === null || reply === undefined) continue;
    const ids: string[] = [];
    for (const [, entries] of reply)
      for (const [id, fields] of entries) {
        last = id.toString();
        ids.push(last);
        const bytes = fields[1];
        if (bytes === undefined) continue;
        let message: unknown;
        try {
          message = decode(bytes);
        } catch {
          continue;
        }
        inbox.onMessage(message);
      }
    if (ids.length > 0) cmd.xdel(key, ...ids).catch(() => {});
  }
}
