/**
 * Every message sent within a run, in the order sent: who sent it (the expert, and the subtask
 * when a subtask did), to whom, whether a tell or an ask, when it was sent, when its handler
 * began and ended, and how. Plain arrays appended to, one entry per message, read once to build
 * `outcome.messageLog` (and from it the trace's message flows).
 */
import type { MessageRecord } from '../types.js';

/** How a message's handling ended (`Open`: not yet). */
export const MessageEnd = { Open: 0, Done: 1, Failed: 2 } as const;
type EndCode = (typeof MessageEnd)[keyof typeof MessageEnd];

const KINDS = ['tell', 'ask'] as const;
const HANDLERS = ['inline', 'heavy'] as const;

/** Messages a run logs at most (a chatty run must not grow the log for ever): the first ones. */
export const MAX_LOGGED_MESSAGES = 1_000_000;

export class MessageLog {
  readonly #limit: number;
  /** Messages sent past the limit, not logged. */
  unlogged = 0;

  constructor(limit = MAX_LOGGED_MESSAGES) {
    this.#limit = limit;
  }

  readonly #from: string[] = [];
  readonly #subtask: number[] = [];
  readonly #to: string[] = [];
  /** 0 tell, 1 ask. */
  readonly #kind: number[] = [];
  readonly #sent: number[] = [];
  readonly #started: number[] = [];
  readonly #ended: number[] = [];
  /** -1 before its handler began, else 0 inline, 1 heavy. */
  readonly #handler: number[] = [];
  readonly #end: EndCode[] = [];

  get size(): number {
    return this.#from.length;
  }

  /**
   * A message left `from` (`subtask` ≥ 0: sent by that subtask) at `now`: returns its entry, or
   * -1 past the limit (the other calls ignore it).
   */
  sent(from: string, subtask: number, to: string, kind: 'tell' | 'ask', now: number): number {
    if (this.#from.length >= this.#limit) {
      this.unlogged++;
      return -1;
    }
    this.#from.push(from);
    this.#subtask.push(subtask);
    this.#to.push(to);
    this.#kind.push(kind === 'ask' ? 1 : 0);
    this.#sent.push(now);
    this.#started.push(Number.NaN);
    this.#ended.push(Number.NaN);
    this.#handler.push(-1);
    this.#end.push(MessageEnd.Open);
    return this.#from.length - 1;
  }

  /** Its handler began at `now` (a heavy one: when it was handed to the pool). */
  started(entry: number, handler: 'inline' | 'heavy', now: number): void {
    if (entry < 0 || this.#handler[entry] !== -1) return;
    this.#handler[entry] = handler === 'heavy' ? 1 : 0;
    this.#started[entry] = now;
  }

  /** Its handler ended (or it could not be delivered) at `now`; the first end counts. */
  ended(entry: number, end: EndCode, now: number): void {
    if (entry < 0 || this.#end[entry] !== MessageEnd.Open) return;
    this.#end[entry] = end;
    this.#ended[entry] = now;
  }

  /** Given up on before any handler took it (its ask timed out, or its asker ended): failed. */
  abandoned(entry: number, now: number): void {
    if (entry >= 0 && this.#handler[entry] === -1) this.ended(entry, MessageEnd.Failed, now);
  }

  records(ids: readonly string[]): MessageRecord[] {
    const out: MessageRecord[] = new Array(this.size);
    for (let k = 0; k < this.size; k++) {
      const subtask = this.#subtask[k] as number;
      const started = this.#started[k] as number;
      const ended = this.#ended[k] as number;
      const handler = this.#handler[k] as number;
      const end = this.#end[k] as EndCode;
      out[k] = {
        from: this.#from[k] as string,
        subtask: subtask < 0 ? undefined : ids[subtask],
        to: this.#to[k] as string,
        kind: KINDS[this.#kind[k] as 0 | 1],
        handler: handler < 0 ? undefined : HANDLERS[handler as 0 | 1],
        sentAtMs: this.#sent[k] as number,
        startedAtMs: Number.isNaN(started) ? undefined : started,
        endedAtMs: Number.isNaN(ended) ? undefined : ended,
        status:
          end === MessageEnd.Done
            ? 'done'
            : end === MessageEnd.Failed
              ? 'failed'
              : handler < 0
                ? 'undelivered'
                : 'running',
      };
    }
    return out;
  }
}
