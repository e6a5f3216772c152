// A run's message log (src/runs/messages.ts): each entry ends once, with the first end; a
// message given up on before any handler took it is failed, one given up on while a handler
// has it keeps its handler's end; the statuses read as the docs say.
import { describe, expect, it } from 'vitest';
import { MessageEnd, MessageLog } from '../../dist/src/runs/messages.js';

describe('the message log', () => {
  it('records each message once, from send to its first end', () => {
    const log = new MessageLog();
    const done = log.sent('a', 0, 'b', 'tell', 1);
    const failed = log.sent('a', 1, 'b', 'ask', 2);
    log.sent('b', -1, 'a', 'tell', 3); // never taken
    const running = log.sent('a', 0, 'c', 'ask', 4);
    const abandoned = log.sent('a', 0, 'c', 'ask', 5);
    const late = log.sent('a', 1, 'c', 'ask', 6);
    log.started(done, 'inline', 2);
    log.started(done, 'heavy', 9); // a second start changes nothing
    log.ended(done, MessageEnd.Done, 3);
    log.ended(done, MessageEnd.Failed, 10); // nor a second end
    log.started(failed, 'heavy', 4);
    log.ended(failed, MessageEnd.Failed, 6);
    log.started(running, 'heavy', 5);
    log.abandoned(running, 7); // its handler has it: its own end will tell
    log.abandoned(abandoned, 8);
    log.started(late, 'inline', 7);
    log.abandoned(late, 8);
    log.ended(late, MessageEnd.Done, 9);
    const records = log.records(['s0', 's1']);
    expect(records.map((r) => r.status)).toEqual([
      'done',
      'failed',
      'undelivered',
      'running',
      'failed',
      'done',
    ]);
    expect(records[0]).toEqual({
      from: 'a',
      subtask: 's0',
      to: 'b',
      kind: 'tell',
      handler: 'inline',
      sentAtMs: 1,
      startedAtMs: 2,
      endedAtMs: 3,
      status: 'done',
    });
    expect(records[2]).toMatchObject({
      subtask: undefined,
      handler: undefined,
      startedAtMs: undefined,
    });
    expect(records[4]).toMatchObject({ handler: undefined, endedAtMs: 8 });
    expect(records[5]).toMatchObject({ endedAtMs: 9 });
  });

  it('logs the first messages up to its limit and counts the rest', () => {
    const log = new MessageLog(2);
    expect(log.sent('a', 0, 'b', 'tell', 1)).toBe(0);
    expect(log.sent('a', 0, 'b', 'tell', 2)).toBe(1);
    const past = log.sent('a', 0, 'b', 'tell', 3);
    expect(past).toBe(-1);
    log.started(past, 'inline', 4);
    log.ended(past, MessageEnd.Done, 5);
    log.abandoned(past, 6);
    expect(log.unlogged).toBe(1);
    expect(log.records(['s0']).map((r) => r.sentAtMs)).toEqual([1, 2]);
  });
});
