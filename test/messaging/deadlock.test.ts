// The deadlock check as a pure function (src/messaging/deadlock.ts): frames, asks and pools made
// by hand, so that each rule is seen on its own — who is stuck, which ask is failed, and when
// nothing is.
import { describe, expect, it } from 'vitest';
import { findDeadlock, threadsOf } from '../../dist/src/messaging/deadlock.js';
import type { Ask, Frame } from '../../dist/src/messaging/types.js';

let seq = 0;

function onThread(expert: string, thread: number): Frame {
  return {
    kind: 'task',
    expert,
    runId: 'run-1',
    index: 0,
    asks: new Set(),
    onThread: true,
    thread,
    ended: false,
  };
}

function ask(from: Frame, to: string, state: Ask['state'], handler?: Frame): Ask {
  const a = {
    seq: ++seq,
    from,
    to,
    state,
    handler,
    delivery: undefined as never,
    settled: false,
    timer: undefined,
    resolve: () => {},
    reject: () => {},
  } satisfies Ask;
  from.asks.add(a);
  return a;
}

const shared = { threads: 2 };
const own = { threads: 1 };
const onShared = () => shared;

describe('findDeadlock', () => {
  it('two frames holding both threads, each waiting for a heavy handler not started: the newest ask fails', () => {
    const a = onThread('a', 0);
    const b = onThread('b', 1);
    ask(a, 'h', 'queued');
    const newest = ask(b, 'h', 'queued');
    const found = findDeadlock(new Set([a, b]), onShared);
    expect(found?.victim).toBe(newest);
    expect(found?.threads).toBe(2);
    expect(found?.chain).toBe('a asks h; b asks h');
  });

  it('nothing while a thread is free', () => {
    const a = onThread('a', 0);
    ask(a, 'h', 'queued');
    expect(findDeadlock(new Set([a]), onShared)).toBeUndefined();
    const b = onThread('b', 0);
    ask(b, 'h', 'queued');
    // Both on the same thread (seen there one after the other): one thread held of two.
    expect(findDeadlock(new Set([a, b]), onShared)).toBeUndefined();
  });

  it('an ask to an expert on threads of its own, with one free, moves', () => {
    const a = onThread('a', 0);
    const b = onThread('b', 1);
    ask(a, 'mine', 'queued');
    ask(b, 'mine', 'queued');
    const poolOf = (expert: string) => (expert === 'mine' ? own : shared);
    expect(findDeadlock(new Set([a, b]), poolOf)).toBeUndefined();
  });

  it('an ask answered by a running handler that waits on a stuck ask is stuck too; the one waiting for a thread is failed', () => {
    const a = onThread('a', 0);
    const b = onThread('b', 1);
    const handler = onThread('h', 1);
    // a's ask runs inline at h's handler, which asks for a thread of the full pool.
    ask(a, 'h', 'inline', handler);
    ask(handler, 'x', 'queued');
    const newest = ask(b, 'x', 'mailbox');
    const found = findDeadlock(new Set([a, b]), onShared);
    // Not a's (it waits on a handler, not for a thread): the newest of those waiting for one.
    expect(found?.victim).toBe(newest);
  });

  it('an ask whose running handler waits on an ask that can move, moves too: no deadlock', () => {
    const a = onThread('a', 0);
    const handler = onThread('h', 1);
    ask(a, 'h', 'heavy', handler);
    // The handler asks an expert on threads of its own, which has one free.
    ask(handler, 'mine', 'queued');
    const poolOf = (expert: string) => (expert === 'mine' ? own : shared);
    expect(findDeadlock(new Set([a, handler]), poolOf)).toBeUndefined();
    // With every thread of that pool held as well, the same asks are stuck.
    const other = onThread('mine', 2);
    ask(other, 'h', 'queued');
    expect(findDeadlock(new Set([a, handler, other]), poolOf)).toBeDefined();
  });

  it('a heavy handler that holds a thread and is itself stuck keeps its askers stuck', () => {
    const a = onThread('a', 0);
    const handler = onThread('h', 1);
    ask(a, 'h', 'heavy', handler);
    const last = ask(handler, 'z', 'queued');
    const found = findDeadlock(new Set([a, handler]), onShared);
    expect(found?.victim).toBe(last);
  });
});

describe('threadsOf', () => {
  it('counts distinct threads, and each frame not yet seen on one as one', () => {
    expect(threadsOf([onThread('a', 0), onThread('b', 0), onThread('c', 1)])).toBe(2);
    expect(threadsOf([onThread('a', -1), onThread('b', -1), onThread('c', 1)])).toBe(3);
    expect(threadsOf([])).toBe(0);
  });
});
