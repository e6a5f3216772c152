/**
 * Who runs what next. Ready subtasks wait in per-run queues keyed by (skill, complexity), so the
 * subtasks an expert qualifies for are found without a scan. Runs share experts round-robin,
 * FIFO within a run; among the experts with a free slot the least loaded takes it
 * (active ÷ concurrency, ties by higher level, then name). No global barrier.
 */
import { Deque } from '../pool/queue.js';
import type { ExpertInfo } from '../types.js';

/** The coordinator's view of an expert's capacity. */
export interface ExpertSlot {
  name: string;
  skills: Readonly<Record<string, number>>;
  concurrency: number;
  /**
   * Subtasks it may take beyond `concurrency`, to wait in a thread's port behind one of its own
   * (see `lookaheadOf`): a thread that ends one of its subtasks starts the next without waiting
   * for the main thread. Never more than it can take without exceeding `concurrency` at once.
   */
  lookahead: number;
  /**
   * Its lookahead while one run alone is under way: `lookahead` times the pool's batch for its
   * module, bounded by ~24 ms of expected work per thread (see `Core.refreshAhead`), so that the
   * pool has whole batches of its short subtasks to send. With two runs or more, only
   * `lookahead`: another run's subtasks would wait behind more of a deep lookahead, or share its
   * batches and come back only with them.
   */
  ahead: number;
  /** Subtasks handed to it and not yet ended (running, or waiting as its lookahead). */
  active: number;
  /** Ready or busy: takes work. False while probing, backing off or retired. */
  accepting: boolean;
  retired: boolean;
}

/**
 * An expert's slot as the runtime keeps it: its state is the expert machine's (written as it
 * enters one), and whether it takes work, or is retired, follows from that state alone.
 */
export class Slot implements ExpertSlot {
  state: ExpertInfo['state'] = 'probing';
  ahead: number;
  active = 0;

  constructor(
    readonly name: string,
    readonly skills: Readonly<Record<string, number>>,
    readonly concurrency: number,
    readonly lookahead: number,
  ) {
    // Deep once the pool has measured its subtasks (Core.refreshAhead).
    this.ahead = lookahead;
  }

  get accepting(): boolean {
    return this.state === 'ready' || this.state === 'busy';
  }

  get retired(): boolean {
    return this.state === 'retired';
  }
}

export interface WorkItem {
  runId: string;
  index: number;
  /** Admission order across every run. */
  seq: number;
  needs: string;
  complexity: number;
  /** Prefer another expert than this one (it just failed the subtask). */
  avoid: string | undefined;
}

export interface Assignment {
  item: WorkItem;
  expert: ExpertSlot;
  level: number;
}

/** A run's subtasks of one (skill, complexity), with the experts qualified for them. */
interface Queue {
  items: Deque<WorkItem>;
  /** `qualified(needs, complexity)`, found once when the queue is made. */
  qualified: ExpertSlot[];
}

interface RunQueues {
  runId: string;
  /** By skill, then by complexity (index 1–5): found per subtask without making a key. */
  queues: Map<string, (Queue | undefined)[]>;
  /** The same queues in the order they were made, for the walks. */
  list: Queue[];
  size: number;
}

/**
 * How many subtasks an expert takes ahead of its slots. While `concurrency` ≥ the pool's
 * threads, the expert can never run more subtasks at once than there are threads, however many
 * it is handed: it takes one more per thread, which waits in that thread's port and starts the
 * moment the thread is done (as the pool alone does with everything queued). Below that, none:
 * only `concurrency` of its subtasks are ever out, so that no more than that run at once.
 */
export function lookaheadOf(concurrency: number, threads: number): number {
  return concurrency >= threads ? threads : 0;
}

const keyOf = (needs: string, complexity: number): string => `${complexity}\u0000${needs}`;

export class Scheduler {
  readonly experts: ExpertSlot[];
  readonly #qualified = new Map<string, ExpertSlot[]>();
  readonly #runs: RunQueues[] = [];
  readonly #byRun = new Map<string, RunQueues>();
  #cursor = 0;
  #seq = 0;
  #queued = 0;
  readonly #runsUnderWay: () => number;

  /**
   * @param runsUnderWay How many runs are under way (the troupe's admitted runs); by default,
   *   those that have had subtasks queued here and have not been removed.
   */
  constructor(experts: ExpertSlot[], runsUnderWay?: () => number) {
    this.experts = experts;
    this.#runsUnderWay = runsUnderWay ?? (() => this.#runs.length);
  }

  /** Subtasks waiting for an expert, across runs. */
  get queued(): number {
    return this.#queued;
  }

  /** Experts with the skill at a level ≥ complexity, best level first, then by name. */
  qualified(needs: string, complexity: number): ExpertSlot[] {
    const key = keyOf(needs, complexity);
    let list = this.#qualified.get(key);
    if (list === undefined) {
      list = this.experts
        .filter((e) => (e.skills[needs] ?? 0) >= complexity)
        .sort(
          (a, b) => (b.skills[needs] ?? 0) - (a.skills[needs] ?? 0) || (a.name < b.name ? -1 : 1),
        );
      this.#qualified.set(key, list);
    }
    return list;
  }

  enqueue(runId: string, index: number, needs: string, complexity: number, avoid?: string): void {
    let run = this.#byRun.get(runId);
    if (run === undefined) {
      run = { runId, queues: new Map(), list: [], size: 0 };
      this.#byRun.set(runId, run);
      this.#runs.push(run);
    }
    let levels = run.queues.get(needs);
    if (levels === undefined) {
      levels = [];
      run.queues.set(needs, levels);
    }
    let queue = levels[complexity];
    if (queue === undefined) {
      queue = { items: new Deque<WorkItem>(), qualified: this.qualified(needs, complexity) };
      levels[complexity] = queue;
      run.list.push(queue);
    }
    queue.items.push({ runId, index, seq: this.#seq++, needs, complexity, avoid });
    run.size++;
    this.#queued++;
  }

  /** Drops a run's waiting subtasks (it ended); returns how many. */
  removeRun(runId: string): number {
    const run = this.#byRun.get(runId);
    if (run === undefined) return 0;
    this.#byRun.delete(runId);
    const at = this.#runs.indexOf(run);
    this.#runs.splice(at, 1);
    if (this.#cursor > at) this.#cursor--;
    this.#queued -= run.size;
    return run.size;
  }

  /** The (skill, complexity) pairs of a run's waiting subtasks that no expert can ever serve now. */
  unservable(runId: string): { needs: string; complexity: number }[] {
    const run = this.#byRun.get(runId);
    if (run === undefined) return [];
    const out: { needs: string; complexity: number }[] = [];
    for (const queue of run.list) {
      const head = queue.items.peek();
      if (head === undefined) continue;
      if (queue.qualified.every((e) => e.retired)) {
        out.push({ needs: head.needs, complexity: head.complexity });
      }
    }
    return out;
  }

  /** Runs with waiting subtasks. */
  runIds(): string[] {
    return this.#runs.map((r) => r.runId);
  }

  /** Assigns waiting subtasks to free experts until nothing more fits. */
  dispatch(): Assignment[] {
    const out: Assignment[] = [];
    if (this.#queued === 0) return out;
    let idle = 0;
    // The number of runs under way does not change within a pass: each expert's capacity is
    // read once per pass, not once per subtask.
    const deep = this.#runsUnderWay() <= 1;
    while (this.#runs.length > 0 && this.#hasFreeSlot(deep)) {
      const run = this.#runs[this.#cursor % this.#runs.length] as RunQueues;
      this.#cursor = (this.#cursor + 1) % Math.max(1, this.#runs.length);
      const assignment = run.size > 0 ? this.#takeFrom(run, deep) : undefined;
      if (assignment === undefined) {
        if (++idle >= this.#runs.length) break; // a whole round without progress
        continue;
      }
      idle = 0;
      assignment.expert.active++;
      out.push(assignment);
    }
    return out;
  }

  #hasFreeSlot(deep: boolean): boolean {
    for (const e of this.experts) if (e.accepting && e.active < capacity(e, deep)) return true;
    return false;
  }

  /** The lookahead the expert may take now: deep (`ahead`) while at most one run is under way. */
  lookaheadNow(e: ExpertSlot): number {
    return lookaheadWhen(e, this.#runsUnderWay() <= 1);
  }

  /** The run's oldest waiting subtask that a free expert qualifies for. */
  #takeFrom(run: RunQueues, deep: boolean): Assignment | undefined {
    let queue: Queue | undefined;
    let item: WorkItem | undefined;
    let expert: ExpertSlot | undefined;
    for (const each of run.list) {
      const head = each.items.peek();
      if (head === undefined || (item !== undefined && item.seq < head.seq)) continue;
      const chosen = choose(each.qualified, head, deep);
      if (chosen === undefined) continue;
      queue = each;
      item = head;
      expert = chosen;
    }
    if (queue === undefined || item === undefined || expert === undefined) return undefined;
    queue.items.shift();
    run.size--;
    this.#queued--;
    return { item, expert, level: expert.skills[item.needs] ?? 0 };
  }
}

/** The expert's lookahead: deep (`ahead`) while at most one run is under way (`deep`). */
function lookaheadWhen(e: ExpertSlot, deep: boolean): number {
  return deep ? e.ahead : e.lookahead;
}

/** What the expert may hold now: its slots and its lookahead. */
function capacity(e: ExpertSlot, deep: boolean): number {
  return e.concurrency + lookaheadWhen(e, deep);
}

/** Least loaded free qualified expert; the one to avoid only if no other is free. */
function choose(qualified: ExpertSlot[], item: WorkItem, deep: boolean): ExpertSlot | undefined {
  let best: ExpertSlot | undefined;
  let bestLoad = Number.POSITIVE_INFINITY;
  let fallback: ExpertSlot | undefined;
  for (const e of qualified) {
    if (!e.accepting || e.active >= capacity(e, deep)) continue;
    if (e.name === item.avoid) {
      fallback = e;
      continue;
    }
    // The list is sorted by level then name, so a strict < keeps those tie-breaks. A free
    // slot (load < 1) always wins over room for lookahead only (load ≥ 1).
    const load = e.active / e.concurrency;
    if (load < bestLoad) {
      best = e;
      bestLoad = load;
    }
  }
  return best ?? fallback;
}
