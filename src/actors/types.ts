/**
 * The records the machines, the dispatcher, the links and the router share: an expert's, one
 * attempt's and how it ended. Types only, owned by no one module, so that none of them imports
 * another for its types (test/structure.test.ts).
 */
import type { AnyActorRef } from 'xstate';
import type { TroupeError } from '../errors.js';
import type { Frame } from '../messaging/types.js';
import type { Slot } from '../runs/scheduler.js';
import type { ExpertInfo } from '../types.js';
import type { ResolvedExpert } from './experts.js';
import type { Fault, FaultHistory } from './supervision.js';

/** What the dispatcher hands an expert: one attempt of one subtask. */
export interface WorkOrder {
  runId: string;
  index: number;
  id: string;
  needs: string;
  attempt: number;
  level: number;
  input: unknown;
  deps: Record<string, unknown> | undefined;
  timeoutMs: number;
  signal: AbortSignal;
  /** Set once the attempt sends a message or asks (see Router). */
  frame?: Frame | undefined;
}

/** How an attempt ended, as the expert reports it. */
export interface WorkResult {
  work: WorkOrder;
  expert: string;
  ok: boolean;
  output: unknown;
  error: TroupeError | undefined;
  runMs: number;
  /** The thread it ran on (-1 if none said). */
  thread: number;
}

export interface ExpertRecord {
  def: ResolvedExpert;
  slot: Slot;
  health: FaultHistory;
  state: ExpertInfo['state'];
  reason: string | undefined;
  restarts: number;
  probeFailures: number;
  /** Attempts it finished successfully (evidence it works: see judgeFault). */
  successes: number;
  /** Faults of isolated inputs not charged yet: nothing said whose they were (see judgeFault). */
  held: Fault[];
  /** Its faults went past the intensity while it was working: it restarts at its next step. */
  restartDue: boolean;
  probe: ExpertInfo['probe'];
  /** Its actor, once the coordinator has spawned it. */
  ref: AnyActorRef | undefined;
  /** Where the dispatcher hands its work: its link to its pool (src/actors/link.ts). */
  readonly link: Link;
}

/** An expert's link to its pool, as the dispatcher sees it. */
export interface Link {
  /** Its expert's machine lives: work handed now is run (otherwise it would be lost). */
  readonly isOpen: boolean;
  take(work: WorkOrder): void;
  /** The expert's machine started: the link takes work until the returned function closes it. */
  open(changed: () => void): () => void;
}
