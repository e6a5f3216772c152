/**
 * The records of messaging: a frame (something that sends messages and waits on its asks), an
 * ask, and a delivery. Shared by the router, the thread context and the deadlock check, so that
 * none of them imports another for its types (test/structure.test.ts).
 */
import type { TroupeError } from '../errors.js';
import type { MessageLog } from '../runs/messages.js';

/** Something that sends messages, and waits on its asks. */
export interface Frame {
  kind: 'task' | 'heavy' | 'inline' | 'main';
  /** The expert acting (`troupe` for the main thread's API). */
  expert: string;
  runId: string | undefined;
  /** The subtask's index in its run, for a task. */
  index: number;
  /** Its asks not yet answered. */
  asks: Set<Ask>;
  /** It runs on a worker thread, which it holds while it waits. */
  onThread: boolean;
  /** The thread it was last seen on (its `ctx` calls say), -1 before. */
  thread: number;
  ended: boolean;
}

export interface Ask {
  /** Creation order: the deadlock breaker fails the newest. */
  seq: number;
  from: Frame;
  to: string;
  /**
   * mailbox: its recipient is not ready; queued: waiting its turn at a heavy recipient; heavy:
   * handed to the pool (running if its handler frame holds a thread); inline: its handler runs.
   */
  state: 'mailbox' | 'queued' | 'heavy' | 'inline';
  handler: Frame | undefined;
  delivery: Delivery;
  settled: boolean;
  timer: unknown;
  resolve: (value: unknown) => void;
  reject: (error: TroupeError) => void;
}

export interface Delivery {
  from: Frame;
  to: string;
  msg: unknown;
  ask: Ask | undefined;
  /** Aborts its job on the pool (heavy recipients). */
  controller: AbortController | undefined;
  /** Given up on before it started (its ask timed out or was cancelled): skipped. */
  dropped: boolean;
  /** Waiting in its recipient's mailbox. */
  inMailbox: boolean;
  /** Its entry in its run's message log (sent from within a run), else undefined. */
  log: { log: MessageLog; entry: number } | undefined;
}
