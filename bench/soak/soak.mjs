// The soak (`npm run soak`, not a test): one troupe, many concurrent runs in waves, injected
// faults, and an account of every subtask kept both from the records and from what the threads
// report they started (shared memory, see expert.mjs). Runs against the built package (dist/):
// Node 20 cannot load .ts, and worker threads cannot either.
import { readFileSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { createTroupe, defineExpert, ERROR_CODES } from '../../dist/src/index.js';
import {
  BUSY,
  ENDED,
  KILLED,
  LAST,
  LATE_ABORTED,
  MAX_INCARNATIONS,
  RAN,
  SETTLED,
  SLOT,
  SLOTS,
  STARTS,
  STATE,
  TRACKED,
  TRACKED_STARTS,
  VIOLATIONS,
} from './expert.mjs';

const USAGE = `usage: node --expose-gc bench/soak/soak.mjs [options]   (npm run soak -- [options])

One troupe runs N subtasks over R concurrent runs in waves (a new run starts as one ends), with
injected faults, after a warm-up; it reports throughput per window, heap and RSS after warm-up
and at the end (after GC), and every subtask lost, duplicated or run after being settled.

  --quick            a CI-sized soak: 6 000 subtasks, 20 runs, runs of 50–400, 1 s windows
  --subtasks N       subtasks after the warm-up (default 100000; --quick 6000)
  --runs N           concurrent runs (default 50; --quick 20)
  --fault-rate R     chance that a subtask faults, 0–0.5 (default 0.01); each run is also
                     cancelled through its signal with chance min(1, 10 R)
  --threads N        worker threads (default 2)
  --seed S           the seed of every draw (default: a random one, printed)
  --json             one JSON document on stdout (progress stays on stderr)
  --strict           also fail (exit 1) when the heap or throughput target is not met
  --heap-snapshots D write the main thread's heap after warm-up and at the end to folder D
                     (soak-warm.heapsnapshot, soak-end.heapsnapshot: compare them in DevTools)
  --help             this text

Exit codes: 0 nothing lost, duplicated or run after settled; 1 a check failed, a run never
settled (the stall watchdog reports what is stuck), or (--strict) a target was not met; 2 bad
usage.`;

// ---- flags ----------------------------------------------------------------------------------

const OPTIONS = {
  quick: { type: 'boolean', default: false },
  subtasks: { type: 'string' },
  runs: { type: 'string' },
  'fault-rate': { type: 'string' },
  threads: { type: 'string' },
  seed: { type: 'string' },
  json: { type: 'boolean', default: false },
  strict: { type: 'boolean', default: false },
  'heap-snapshots': { type: 'string' },
  help: { type: 'boolean', short: 'h', default: false },
};
const FLAGS = Object.keys(OPTIONS);

/** The known flag closest to a mistyped one (edit distance ≤ 2), as `troupe` suggests. */
function closestFlag(given) {
  const distance = (a, b) => {
    let row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      const next = [i];
      for (let j = 1; j <= b.length; j++)
        next[j] = Math.min(
          row[j] + 1,
          next[j - 1] + 1,
          row[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
        );
      row = next;
    }
    return row[b.length];
  };
  const [best] = FLAGS.map((flag) => [flag, distance(given, flag)]).sort((x, y) => x[1] - y[1]);
  return best !== undefined && best[1] <= 2 ? best[0] : undefined;
}

function usageError(message) {
  process.stderr.write(`soak: ${message} (--help lists the flags)\n`);
  process.exit(2);
}

function integer(raw, flag, min, max) {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    usageError(`--${flag}: expected an integer from ${min} to ${max}, got "${raw}"`);
  return n;
}

function readFlags(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: OPTIONS,
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const unknown = /^Unknown option '(-+[^']*)'/.exec(message)?.[1];
    const near = unknown === undefined ? undefined : closestFlag(unknown.replace(/^-+/, ''));
    usageError(
      unknown === undefined
        ? message
        : `unknown option ${unknown}${near ? `; did you mean --${near}?` : ''}`,
    );
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick;
  const subtasks =
    values.subtasks === undefined
      ? quick
        ? 6_000
        : 100_000
      : integer(values.subtasks, 'subtasks', 1, 10_000_000);
  const faultRate = values['fault-rate'] === undefined ? 0.01 : Number(values['fault-rate']);
  if (!Number.isFinite(faultRate) || faultRate < 0 || faultRate > 0.5)
    usageError(`--fault-rate: expected a number from 0 to 0.5, got "${values['fault-rate']}"`);
  const snapshots = values['heap-snapshots'];
  if (snapshots !== undefined && !statSync(snapshots, { throwIfNoEntry: false })?.isDirectory())
    usageError(`--heap-snapshots: "${snapshots}" is not a folder`);
  return {
    quick,
    subtasks,
    runs: values.runs === undefined ? (quick ? 20 : 50) : integer(values.runs, 'runs', 1, 10_000),
    faultRate,
    threads: values.threads === undefined ? 2 : integer(values.threads, 'threads', 1, 64),
    seed:
      values.seed === undefined
        ? Math.floor(Math.random() * 2 ** 32)
        : integer(values.seed, 'seed', 0, 2 ** 32 - 1),
    json: values.json,
    strict: values.strict,
    heapSnapshots: snapshots,
    // Runs of a few hundred to a few thousand subtasks (log-uniform), fewer in --quick.
    minRunSize: quick ? 50 : 200,
    maxRunSize: quick ? 400 : 2_000,
    warmup: Math.max(1_000, Math.min(5_000, Math.round(subtasks * 0.05))),
    windowMs: quick ? 1_000 : 10_000,
    stallMs: 30_000,
  };
}

const options = readFlags(process.argv.slice(2));

// ---- the workload -------------------------------------------------------------------------------

/** mulberry32: a small seeded PRNG, so that every draw is the same for the same seed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const draw = prng(options.seed);
const ITERATIONS_PER_MS = 600_000; // the xorshift loop on this project's VM: ~1.67 ns an iteration
const TIMEOUT_MS = 100; // every subtask's limit; the injected timeouts spin forever
const ATTEMPTS = 3;
const PERMANENT = 0.02; // of the injected faults: fault on every attempt (the run fails)
const CANCEL_RATE = Math.min(1, 10 * options.faultRate); // of the runs

/** One subtask's fault: which, and up to which attempt (1e9: every attempt). */
function drawFault() {
  if (draw() >= options.faultRate) return undefined;
  const k = draw();
  const fault = k < 0.4 ? 'throw' : k < 0.65 ? 'crash' : k < 0.8 ? 'hang' : 'stall';
  if (draw() < PERMANENT) return { fault, until: 1e9 };
  // A throw may fail twice and succeed on the last attempt; a thread fault twice in a row would
  // isolate the subtask (docs/supervision.md), so it faults on the first attempt only.
  return { fault, until: fault === 'throw' && draw() < 0.3 ? 2 : 1 };
}

function drawRunSize(phase) {
  // The warm-up's runs are small, so that every run slot fills and turns over a few times (the
  // heap after warm-up then holds what as many runs at once need).
  if (phase === 'warmup') return Math.max(10, Math.floor(options.warmup / (3 * options.runs)));
  const { minRunSize: lo, maxRunSize: hi } = options;
  return Math.round(lo * (hi / lo) ** draw());
}

// ---- shared accounting ------------------------------------------------------------------------

const totalSlots = options.warmup + options.subtasks;
const sab = new SharedArrayBuffer((SLOTS + SLOT * totalSlots) * 4);
const shared = new Int32Array(sab);
const slotBase = (slot) => SLOTS + SLOT * slot;
/** Starts of each subtask on the threads when its run's outcome resolved. */
const startsAtSettle = new Int32Array(totalSlots);
/** subtask.end events seen per subtask. */
const endEvents = new Uint8Array(totalSlots);
/** The start sequence number when each subtask's subtask.end event came (0 before). */
const endSeq = new Int32Array(totalSlots);
/** 1 once a subtask.start event was seen. */
const startEvents = new Uint8Array(totalSlots);

const killed = (incarnation) => Atomics.load(shared, KILLED + incarnation) !== 0;
/** Whether a thread died mid-subtask: valid once the troupe is closed (see BUSY in expert.mjs). */
const died = (incarnation) => Atomics.load(shared, BUSY + incarnation) !== 0;
/** A subtask's first starts: the thread incarnation, its how-manieth start, the sequence number. */
const startsOf = (slot) => {
  const base = slotBase(slot);
  const tracked = Math.min(TRACKED_STARTS, Atomics.load(shared, base + STARTS));
  return Array.from({ length: tracked }, (_, i) => ({
    incarnation: Atomics.load(shared, base + TRACKED + 3 * i),
    ran: Atomics.load(shared, base + TRACKED + 3 * i + 1),
    seq: Atomics.load(shared, base + TRACKED + 3 * i + 2),
  }));
};
/**
 * A thread dies with the results it had not reported yet: at most its last two messages (the
 * one it ran and the one waiting in its port), of at most 128 subtasks each (docs/pool.md,
 * "Batching").
 */
const UNREPORTED = 2 * 128;
/**
 * Whether a start's result died with its thread and the next start is its re-run: the thread
 * died within UNREPORTED starts of it, and the next start came on another thread after the dead
 * one's last start. (A start after the subtask's subtask.end is caught on the thread: ENDED.)
 */
const lostWithItsThread = (start, next) =>
  next !== undefined &&
  died(start.incarnation) &&
  Atomics.load(shared, RAN + start.incarnation) - start.ran <= UNREPORTED &&
  next.incarnation !== start.incarnation &&
  next.seq > Atomics.load(shared, LAST + start.incarnation);
// Each subtask's record, kept in arrays sized once (the soak's own accounting must not grow the
// heap it measures): its status, attempts, and the codes its failed attempts had (a bit each).
const STATUSES = ['', 'done', 'failed', 'cancelled'];
const CODES = Object.keys(ERROR_CODES);
const recordStatus = new Uint8Array(totalSlots);
const recordAttempts = new Uint16Array(totalSlots);
const recordCodes = new Uint32Array(totalSlots);
const FAULTS = ['', 'throw', 'crash', 'hang', 'stall'];
/** The fault injected in each subtask: its index in FAULTS, + 8 when on every attempt. */
const faultOf = new Uint8Array(totalSlots);

function describeRecord(slot) {
  const codes = CODES.filter((_, bit) => recordCodes[slot] & (1 << bit));
  const fault = faultOf[slot];
  return (
    `${STATUSES[recordStatus[slot]] || 'no record'} after ${recordAttempts[slot]} attempts` +
    `${codes.length ? ` (failed: ${codes.join(', ')})` : ''}; ` +
    `${fault ? `${FAULTS[fault & 7]} fault${fault & 8 ? ' on every attempt' : ''}` : 'no injected fault'}`
  );
}

const tally = {
  runs: { done: 0, failed: 0, cancelled: 0, rejected: 0, cancelRequested: 0, withPermanent: 0 },
  subtasks: { done: 0, failed: 0, cancelled: 0 },
  /** Final errors of failed and cancelled subtasks, by code. */
  finalCodes: {},
  /** Every failed attempt's error, by code. */
  attemptCodes: {},
  /** Failed attempts of subtasks with no injected fault, by code. */
  collateralCodes: {},
  runErrorCodes: {},
  isolated: 0,
  injected: { throw: 0, crash: 0, hang: 0, stall: 0, permanent: 0 },
  retries: 0,
  lost: 0,
  duplicated: 0,
  /** More starts on the threads than attempts, explained by a thread that died (at-least-once). */
  rerunAfterThreadDeath: 0,
  doneNeverStarted: 0,
  wrongOutput: 0,
  faultSwallowed: 0,
  doneWithoutAllRecordsDone: 0,
  endEventsMissing: 0,
  endEventsDoubled: 0,
  /** Cancelled after a subtask.start event, with no subtask.end event (see check()). */
  startedCancelledNoEndEvent: 0,
  examples: [],
};

const count = (map, key) => {
  map[key] = (map[key] ?? 0) + 1;
};
const note = (what) => {
  if (tally.examples.length < 20) tally.examples.push(what);
};

// ---- runs ------------------------------------------------------------------------------------

let lastProgress = performance.now();
let current = { settled: 0, done: 0 };
const inFlight = new Set();

function makeRun(phase, first, size) {
  const faults = Array.from({ length: size }, drawFault);
  faults.forEach((fault, i) => {
    if (fault) faultOf[first + i] = FAULTS.indexOf(fault.fault) + (fault.until > ATTEMPTS ? 8 : 0);
  });
  const cancelAt = draw() < CANCEL_RATE ? Math.floor(draw() * size) : -1;
  const works = Array.from({ length: size }, () => Math.round(ITERATIONS_PER_MS * (1 + draw())));
  const controller = new AbortController();
  const run = {
    phase,
    first,
    size,
    faults,
    cancelAt,
    startedAt: performance.now(),
    ended: 0,
    controller,
  };
  const plan = {
    name: `${phase}-${first}`,
    analyze: () =>
      works.map((work, i) => ({
        id: String(i),
        needs: 'soak',
        input: { sab, slot: first + i, work, ...faults[i] },
      })),
  };
  const onEvent = (event) => {
    if (event.type === 'subtask.start') {
      const i = Number(event.id);
      startEvents[first + i] = 1;
      if (i === cancelAt && !controller.signal.aborted) {
        tally.runs.cancelRequested++;
        controller.abort(new Error('the soak cancels this run'));
      }
    } else if (event.type === 'subtask.end') {
      const slot = first + Number(event.id);
      // Done or failed for good: from now on a start of it on any thread is a violation.
      Atomics.store(shared, slotBase(slot) + STATE, ENDED);
      endSeq[slot] = Atomics.load(shared, 1);
      endEvents[slot]++;
      run.ended++;
      current.settled++;
      if (event.status === 'done') current.done++;
      lastProgress = performance.now();
    }
  };
  run.promise = troupe.run(plan, null, { signal: controller.signal, onEvent });
  return run;
}

/** Checks a settled run against its subtasks and what the threads did; keeps only counts. */
function check(run, outcome) {
  const { first, size, faults } = run;
  // Mark every subtask settled before reading its starts: a start after this is caught on the
  // thread (VIOLATIONS / LATE_ABORTED) or by the final scan (starts above startsAtSettle).
  for (let i = 0; i < size; i++) {
    const base = slotBase(first + i);
    Atomics.compareExchange(shared, base + STATE, 0, SETTLED);
    startsAtSettle[first + i] = Atomics.load(shared, base + STARTS);
  }
  count(tally.runs, outcome.status);
  if (outcome.error) count(tally.runErrorCodes, outcome.error.code);
  tally.retries += outcome.metrics.retries;
  if (faults.some((f) => f !== undefined && f.until > ATTEMPTS)) tally.runs.withPermanent++;
  const seen = new Uint8Array(size);
  const statuses = new Array(size);
  for (const record of outcome.records) {
    const i = Number(record.id);
    if (!Number.isInteger(i) || i < 0 || i >= size) {
      tally.duplicated++;
      note(`run ${first}: a record for an unknown subtask "${record.id}"`);
      continue;
    }
    seen[i]++;
    statuses[i] = record.status;
    // Cancelled records come with no subtask.end event: they settle now, with the outcome.
    if (record.status === 'cancelled' && endEvents[first + i] === 0) current.settled++;
    const slot = first + i;
    const fault = faults[i];
    count(tally.subtasks, record.status);
    recordStatus[slot] = STATUSES.indexOf(record.status);
    recordAttempts[slot] = record.attempts;
    for (const error of record.errors) {
      const bit = CODES.indexOf(error.code);
      if (bit >= 0) recordCodes[slot] |= 1 << bit;
      count(tally.attemptCodes, error.code);
      if (fault === undefined) count(tally.collateralCodes, error.code);
    }
    if (record.status !== 'done' && record.error) count(tally.finalCodes, record.error.code);
    if (record.error?.details?.isolated === true) tally.isolated++;
    const starts = startsAtSettle[slot];
    if (record.status === 'done') {
      if (starts === 0) {
        tally.doneNeverStarted++;
        note(`slot ${slot}: done, never started on a thread`);
      }
      if (fault !== undefined && record.attempts <= fault.until) {
        tally.faultSwallowed++;
        note(`slot ${slot}: done at attempt ${record.attempts} through a ${fault.fault} fault`);
      }
    }
  }
  for (let i = 0; i < size; i++) {
    if (seen[i] === 0) {
      tally.lost++;
      note(`slot ${first + i}: no record`);
    } else if (seen[i] > 1) {
      tally.duplicated += seen[i] - 1;
      note(`slot ${first + i}: ${seen[i]} records`);
    }
    const events = endEvents[first + i];
    if (events === 0) {
      // A run's cancel writes the records of what is left without subtask.end events (the
      // ledger's cancelRest); a done or failed subtask must have had one.
      if (statuses[i] === 'cancelled') {
        if (startEvents[first + i] === 1) tally.startedCancelledNoEndEvent++;
      } else {
        tally.endEventsMissing++;
        note(`slot ${first + i}: ${statuses[i]} without a subtask.end event`);
      }
    } else if (events > 1) {
      tally.endEventsDoubled++;
      tally.duplicated++;
      note(`slot ${first + i}: ${events} subtask.end events`);
    }
    const fault = faults[i];
    if (fault !== undefined && startsAtSettle[first + i] > 0) {
      count(tally.injected, fault.fault);
      if (fault.until > ATTEMPTS) tally.injected.permanent++;
    }
  }
  if (outcome.status === 'done') {
    if (outcome.records.some((r) => r.status !== 'done')) tally.doneWithoutAllRecordsDone++;
    const bySubtask = new Map(outcome.contributions.map((c) => [c.subtask, c.output]));
    for (let i = 0; i < size; i++) {
      if (bySubtask.get(String(i))?.slot !== first + i) {
        tally.wrongOutput++;
        note(`slot ${first + i}: output ${JSON.stringify(bySubtask.get(String(i)))}`);
      }
    }
  }
}

/** Runs `total` subtasks from slot `first` on, `options.runs` runs at a time; resolves once all settled. */
function phase(name, first, total, onAdmissionEnd = () => {}) {
  let admitted = 0;
  return new Promise((resolve) => {
    const fill = () => {
      while (inFlight.size < options.runs && admitted < total) {
        const size = Math.min(total - admitted, drawRunSize(name));
        const run = makeRun(name, first + admitted, size);
        admitted += size;
        if (admitted >= total) onAdmissionEnd();
        inFlight.add(run);
        run.promise.then(
          (outcome) => {
            lastProgress = performance.now();
            check(run, outcome);
            inFlight.delete(run);
            fill();
          },
          (error) => {
            // run() rejects only before admission (E_QUEUE_FULL, E_CLOSED, …): none is expected.
            tally.runs.rejected++;
            tally.lost += size;
            note(`run ${run.first}: rejected ${error?.code ?? ''} ${error?.message ?? error}`);
            inFlight.delete(run);
            fill();
          },
        );
      }
      if (inFlight.size === 0 && admitted >= total) resolve();
    };
    fill();
  });
}

// ---- measuring ------------------------------------------------------------------------------

const MB = 1024 * 1024;
const round = (n, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const gc = typeof globalThis.gc === 'function' ? globalThis.gc : undefined;

async function memoryAfterGc() {
  if (gc) {
    // Twice, a turn apart: the first frees what finalizers and weak references then let go.
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  }
  const { heapUsed, rss } = process.memoryUsage();
  // Compiled code lives on the same heap and grows as the JIT optimizes more paths: shown apart.
  const code = getHeapSpaceStatistics().find((space) => space.space_name === 'code_space');
  return {
    heapMB: round(heapUsed / MB),
    codeMB: round((code?.space_used_size ?? 0) / MB, 2),
    rssMB: round(rss / MB),
  };
}

/** CPU seconds of a /proc stat file's utime + stime (Linux; 0 elsewhere). */
function statSeconds(path) {
  try {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Busy CPU seconds of the whole machine, from /proc/stat (0 off Linux). */
function machineBusySeconds() {
  try {
    const [user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8')
      .split('\n')[0]
      .trim()
      .split(/\s+/)
      .slice(1)
      .map(Number);
    return (user + nice + system + irq + softirq + steal) / 100;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds so far: this process (every thread), its main thread alone, and the machine. Per
 * window, they tell a slower window on a machine others load from troupe slowing down.
 */
const cpuSample = () => ({
  own: statSeconds('/proc/self/stat'),
  main: statSeconds(`/proc/self/task/${process.pid}/stat`),
  machine: machineBusySeconds(),
});

/** With --heap-snapshots, writes the main thread's heap (after the figures are taken). */
function snapshot(name) {
  if (options.heapSnapshots === undefined) return;
  const path = writeHeapSnapshot(join(options.heapSnapshots, name));
  log(`heap snapshot: ${path}`);
}

function machine() {
  return {
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cores: availableParallelism(),
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGB: round(totalmem() / 1024 ** 3),
    load: loadavg().map((n) => round(n, 2)),
  };
}

const log = (line) => process.stderr.write(`${line}\n`);

// ---- the stall watchdog ---------------------------------------------------------------------

let troupe;

/** No subtask has ended for `stallMs` while runs are in flight: say what is stuck, then exit 1. */
function watchForStalls() {
  const timer = setInterval(() => {
    if (inFlight.size === 0 || performance.now() - lastProgress < options.stallMs) return;
    clearInterval(timer);
    const stuck = [...inFlight].map((run) => {
      const pending = [];
      for (let i = 0; i < run.size && pending.length < 10; i++) {
        const slot = run.first + i;
        if (endEvents[slot] === 0) {
          const fault = run.faults[i];
          pending.push(
            `${i}: ${startEvents[slot] === 1 ? 'started' : 'not started'}, ` +
              `${Atomics.load(shared, slotBase(slot) + STARTS)} starts on threads` +
              `${fault ? `, ${fault.fault} fault until attempt ${fault.until}` : ''}`,
          );
        }
      }
      return {
        run: `${run.phase}-${run.first}`,
        ageS: round((performance.now() - run.startedAt) / 1000),
        size: run.size,
        ended: run.ended,
        cancelRequested: run.controller.signal.aborted,
        firstPending: pending,
      };
    });
    const stats = troupe.stats();
    const report = {
      stalled: `no subtask ended for ${options.stallMs / 1000} s`,
      seed: options.seed,
      runsInFlight: inFlight.size,
      stuck,
      stats: { runs: stats.runs, subtasks: stats.subtasks },
      experts: stats.experts.map(({ name, state, active, restarts, reason }) => ({
        name,
        state,
        active,
        restarts,
        reason,
      })),
    };
    log(`soak: STALLED\n${JSON.stringify(report, null, 2)}`);
    if (options.json) process.stdout.write(`${JSON.stringify({ ok: false, ...report })}\n`);
    const exit = () => process.exit(1);
    setTimeout(exit, 10_000).unref();
    troupe.close({ force: true }).then(exit, exit);
  }, 1_000);
  timer.unref();
  return () => clearInterval(timer);
}

// ---- main -----------------------------------------------------------------------------------

async function main() {
  const before = machine();
  log(
    `soak: ${options.subtasks} subtasks (+${options.warmup} warm-up), ${options.runs} concurrent runs, ` +
      `${options.threads} threads, fault rate ${options.faultRate}, seed ${options.seed}` +
      `${gc ? '' : ' — global.gc missing (run node with --expose-gc): heap figures are without a forced GC'}`,
  );
  log(
    `machine: node ${before.node}, ${before.cores} cores, ${before.cpu}, load ${before.load.join(' ')}`,
  );
  const expert = (name) =>
    defineExpert({
      name,
      skills: { soak: 1 },
      concurrency: 64,
      module: new URL('./expert.mjs', import.meta.url),
    });
  troupe = createTroupe({
    threads: options.threads,
    experts: [expert('soak-a'), expert('soak-b')],
    timeoutMs: TIMEOUT_MS,
    attempts: ATTEMPTS,
    // At 1 % the injected thread faults come at ~1.5 a second per expert: with the default
    // intensity (5 in 10 s) both experts would spend the soak restarting, with none (30) they
    // never restart. At 10 each restarts now and then, with work in flight, beside the other.
    supervision: { intensity: 10, windowMs: 10_000 },
    random: prng(options.seed ^ 0x9e3779b9),
  });
  const stopWatchdog = watchForStalls();
  const started = performance.now();

  // Warm-up: the same workload, drained, so that threads, modules and the JIT are warm and the
  // heap is measured idle, as it is at the end.
  await phase('warmup', 0, options.warmup);
  const warm = await memoryAfterGc();
  snapshot('soak-warm.heapsnapshot');
  const warmupS = round((performance.now() - started) / 1000);
  log(
    `warm-up: ${options.warmup} subtasks in ${warmupS} s; heap ${warm.heapMB} MB, RSS ${warm.rssMB} MB`,
  );

  const windows = [];
  let admissionOpen = true;
  const t0 = performance.now();
  let windowStart = t0;
  current = { settled: 0, done: 0 };
  let cpuAtStart = cpuSample();
  const closeWindow = async (steady) => {
    const now = performance.now();
    const cpu = cpuSample();
    const seconds = (now - windowStart) / 1000;
    const sample = current;
    current = { settled: 0, done: 0 };
    windowStart = now;
    const cores = (key) => round((cpu[key] - cpuAtStart[key]) / seconds, 2);
    const cpuCores = {
      process: cores('own'),
      mainThread: cores('main'),
      others: round(Math.max(0, cores('machine') - cores('own')), 2),
    };
    cpuAtStart = cpu;
    // Full soaks take a forced GC per window (~10 s apart) so that the heap trend is not the
    // collector's sawtooth; --quick's 1 s windows read the heap as it is.
    const memory = options.quick || !gc ? process.memoryUsage() : undefined;
    const heap = memory
      ? { heapMB: round(memory.heapUsed / MB), rssMB: round(memory.rss / MB) }
      : await memoryAfterGc();
    const w = {
      endS: round((now - t0) / 1000),
      seconds: round(seconds, 2),
      settledPerS: round(sample.settled / seconds),
      donePerS: round(sample.done / seconds),
      ...heap,
      heapAfterGc: memory === undefined,
      runsInFlight: inFlight.size,
      // Subtasks ended in runs still in flight: what a run holds until its outcome (records,
      // outputs); the heap under load follows it.
      endedInFlight: [...inFlight].reduce((sum, run) => sum + run.ended, 0),
      cpuCores,
      // Work per CPU second the soak got: steadier than done/s when others load the machine.
      donePerCoreS: cpuCores.process > 0 ? round(sample.done / seconds / cpuCores.process) : 0,
      steady,
    };
    windows.push(w);
    log(
      `  ${String(w.endS).padStart(6)} s  ${String(w.settledPerS).padStart(7)} settled/s  ` +
        `${String(w.donePerS).padStart(7)} done/s  heap ${w.heapMB} MB  RSS ${w.rssMB} MB  ` +
        `runs ${w.runsInFlight} (${w.endedInFlight} ended)  cores: soak ${cpuCores.process} (main ${cpuCores.mainThread}), ` +
        `others ${cpuCores.others}; ${w.donePerCoreS} done per soak CPU s${steady ? '' : '  (draining)'}`,
    );
  };
  let ticking = Promise.resolve();
  const ticker = setInterval(() => {
    // A window is steady when every run slot stayed busy to its end (new runs still started).
    const steady = admissionOpen;
    ticking = ticking.then(() => closeWindow(steady));
  }, options.windowMs);
  await phase('soak', options.warmup, options.subtasks, () => {
    admissionOpen = false;
  });
  clearInterval(ticker);
  await ticking;
  if (performance.now() - windowStart > 50) await closeWindow(false);
  const soakS = (performance.now() - t0) / 1000;
  const end = await memoryAfterGc();
  snapshot('soak-end.heapsnapshot');
  const stats = troupe.stats();
  stopWatchdog();
  const closeTimer = setTimeout(() => {
    log('soak: troupe.close() did not resolve within 30 s');
    process.exit(1);
  }, 30_000);
  await troupe.close();
  clearTimeout(closeTimer);

  // The final scan: every start after its subtask settled, now that every thread has stopped.
  let startedAfterSettled = 0;
  let violations = 0;
  let lateAborted = 0;
  for (let slot = 0; slot < totalSlots; slot++) {
    const base = slotBase(slot);
    startedAfterSettled += Atomics.load(shared, base + STARTS) - startsAtSettle[slot];
    violations += Atomics.load(shared, base + VIOLATIONS);
    if (Atomics.load(shared, base + VIOLATIONS) > 0) {
      const starts = startsOf(slot).map(
        ({ incarnation: k, ran, seq }) => `thread ${k} #${ran + 1} at ${seq}`,
      );
      note(
        `slot ${slot} ran after settled: ${describeRecord(slot)}; starts: ${starts.join(', ')}; ` +
          `subtask.end ${endSeq[slot] > 0 ? `at sequence ${endSeq[slot]}` : 'not seen'}`,
      );
    }
    lateAborted += Atomics.load(shared, base + LATE_ABORTED);
  }
  const incarnations = Atomics.load(shared, 0);
  let threadsKilled = 0;
  let threadsDied = 0;
  for (let k = 1; k <= incarnations; k++) {
    if (killed(k)) threadsKilled++;
    if (died(k)) threadsDied++;
    // Ended by the pool while it ran a subtask with no injected fault: one that ran past its
    // timeout or was cancelled, and did not stop within cancelGraceMs (a thread starved of CPU).
    if (died(k) && !killed(k)) {
      const slot = Atomics.load(shared, BUSY + k) - 1;
      note(`thread ${k} ended while it ran slot ${slot} (${describeRecord(slot)})`);
    }
  }
  // A start beyond the attempts is the documented at-least-once re-run when the thread it ran
  // on died afterwards (its result died with it, docs/pool.md, "Batching"); otherwise a
  // duplicate.
  for (let slot = 0; slot < totalSlots; slot++) {
    const extra = startsAtSettle[slot] - recordAttempts[slot];
    if (recordStatus[slot] === 0 || extra <= 0) continue;
    const on = startsOf(slot);
    const reruns = on.filter((start, i) => lostWithItsThread(start, on[i + 1])).length;
    if (extra <= reruns) tally.rerunAfterThreadDeath += extra;
    else {
      tally.duplicated++;
      const where = on.map(
        ({ incarnation: k, ran, seq }) =>
          `thread ${k} #${ran + 1} of ${Atomics.load(shared, RAN + k)}${died(k) ? ' (died)' : ''} at ${seq}`,
      );
      note(
        `slot ${slot}: ${startsAtSettle[slot]} starts on the threads for ${recordAttempts[slot]} attempts ` +
          `(${describeRecord(slot)}; starts: ${where.join(', ')})`,
      );
    }
  }

  const steady = windows.filter((w) => w.steady);
  const firstW = windows[0];
  const lastW = steady.at(-1);
  const throughputRatio =
    steady.length >= 2 && firstW.settledPerS > 0
      ? round(lastW.settledPerS / firstW.settledPerS, 3)
      : undefined;
  const doneRatio =
    steady.length >= 2 && firstW.donePerS > 0
      ? round(lastW.donePerS / firstW.donePerS, 3)
      : undefined;
  const perCoreRatio =
    steady.length >= 2 && firstW.donePerCoreS > 0
      ? round(lastW.donePerCoreS / firstW.donePerCoreS, 3)
      : undefined;
  const heapRatio = warm.heapMB > 0 ? round(end.heapMB / warm.heapMB, 3) : undefined;
  const statsLeft =
    stats.runs.active +
    stats.subtasks.outstanding +
    stats.subtasks.queued +
    stats.subtasks.running +
    stats.experts.reduce((sum, e) => sum + e.active, 0);
  const failures = [];
  if (incarnations >= MAX_INCARNATIONS)
    failures.push(
      `${incarnations} thread incarnations: past the soak's tables, its accounting is void`,
    );
  if (tally.lost > 0) failures.push(`${tally.lost} subtasks lost`);
  if (tally.duplicated > 0) failures.push(`${tally.duplicated} subtasks duplicated`);
  if (violations > 0) failures.push(`${violations} subtasks ran after being settled`);
  if (tally.doneNeverStarted > 0) failures.push(`${tally.doneNeverStarted} done but never started`);
  if (tally.wrongOutput > 0) failures.push(`${tally.wrongOutput} wrong outputs`);
  if (tally.faultSwallowed > 0) failures.push(`${tally.faultSwallowed} injected faults swallowed`);
  if (tally.doneWithoutAllRecordsDone > 0) failures.push('a done run with records not done');
  if (statsLeft > 0)
    failures.push(
      `stats() still counts work after the end: runs ${JSON.stringify(stats.runs)}, subtasks ` +
        `${JSON.stringify(stats.subtasks)}, experts ${stats.experts.map((e) => `${e.name} ${e.state} active ${e.active}`).join(', ')}`,
    );
  const targets = {
    heap: { ratio: heapRatio, met: heapRatio !== undefined && Math.abs(heapRatio - 1) <= 0.1 },
    // Judged on subtasks done per second: settled per second also counts a cancelled run's
    // unstarted subtasks, all at once when its outcome resolves, which is no work done.
    throughput: {
      ratio: doneRatio,
      met: doneRatio !== undefined && Math.abs(doneRatio - 1) <= 0.1,
    },
  };
  if (options.strict && !targets.heap.met) failures.push('heap target not met (--strict)');
  if (options.strict && !targets.throughput.met)
    failures.push('throughput target not met (--strict)');

  const summary = {
    ok: failures.length === 0,
    failures,
    command: `node --expose-gc bench/soak/soak.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    options: {
      subtasks: options.subtasks,
      warmup: options.warmup,
      runs: options.runs,
      threads: options.threads,
      faultRate: options.faultRate,
      cancelRate: CANCEL_RATE,
      seed: options.seed,
      runSizes: [options.minRunSize, options.maxRunSize],
      timeoutMs: TIMEOUT_MS,
      attempts: ATTEMPTS,
      windowMs: options.windowMs,
    },
    machine: { ...before, loadAfter: machine().load },
    gc: gc !== undefined,
    wallS: round((performance.now() - started) / 1000),
    warmupS,
    soakS: round(soakS),
    throughput: {
      meanSettledPerS: round(options.subtasks / soakS),
      windows,
      firstWindow: firstW?.settledPerS,
      lastSteadyWindow: lastW?.settledPerS,
      firstWindowDone: firstW?.donePerS,
      lastSteadyWindowDone: lastW?.donePerS,
      lastOverFirst: throughputRatio,
      doneLastOverFirst: doneRatio,
      donePerCoreSLastOverFirst: perCoreRatio,
    },
    memory: { afterWarmup: warm, end, heapEndOverWarmup: heapRatio },
    targets,
    accounting: {
      lost: tally.lost,
      duplicated: tally.duplicated,
      ranAfterSettled: violations,
      startedAfterSettled,
      startedAfterSettledAborted: lateAborted,
      rerunAfterThreadDeath: tally.rerunAfterThreadDeath,
      doneNeverStarted: tally.doneNeverStarted,
      wrongOutput: tally.wrongOutput,
      faultSwallowed: tally.faultSwallowed,
      endEventsMissing: tally.endEventsMissing,
      endEventsDoubled: tally.endEventsDoubled,
      startedCancelledNoEndEvent: tally.startedCancelledNoEndEvent,
      examples: tally.examples,
    },
    runs: tally.runs,
    subtasks: tally.subtasks,
    injected: tally.injected,
    retries: tally.retries,
    isolated: tally.isolated,
    runErrorCodes: tally.runErrorCodes,
    finalErrorCodes: tally.finalCodes,
    attemptErrorCodes: tally.attemptCodes,
    collateralErrorCodes: tally.collateralCodes,
    expertRestarts: Object.fromEntries(stats.experts.map((e) => [e.name, e.restarts])),
    threads: { incarnations, diedMidSubtask: threadsDied, killedByFaults: threadsKilled },
  };
  if (options.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(`${describe(summary)}\n`);
  return summary.ok ? 0 : 1;
}

const codes = (map) =>
  Object.entries(map)
    .sort((a, b) => b[1] - a[1])
    .map(([code, n]) => `${code} ${n}`)
    .join(', ') || 'none';

function describe(s) {
  const a = s.accounting;
  const m = s.machine;
  const t = s.throughput;
  const met = (target) => (target.met ? 'met' : 'NOT met');
  return [
    `soak ${s.ok ? 'PASSED' : 'FAILED'}${s.failures.length ? `: ${s.failures.join('; ')}` : ''}`,
    `  command   ${s.command}  (seed ${s.options.seed})`,
    `  machine   node ${m.node}, ${m.platform}, ${m.cores} cores, ${m.cpu}, ${m.memoryGB} GB; load ${m.load.join(' ')} before, ${m.loadAfter.join(' ')} after`,
    `  workload  ${s.options.subtasks} subtasks (+${s.options.warmup} warm-up) in runs of ${s.options.runSizes.join('–')}, ${s.options.runs} at a time, ${s.options.threads} threads; faults ${s.options.faultRate} a subtask, cancels ${s.options.cancelRate} a run; timeout ${s.options.timeoutMs} ms, ${s.options.attempts} attempts`,
    `  time      ${s.wallS} s in all: warm-up ${s.warmupS} s, soak ${s.soakS} s`,
    `  throughput ${t.meanSettledPerS} settled/s on average; done/s in the first window ${t.firstWindowDone}, in the last steady one ${t.lastSteadyWindowDone}: last ÷ first ${t.doneLastOverFirst ?? 'n/a (fewer than 2 steady windows)'} — target ±10 % ${met(s.targets.throughput)} (settled/s ${t.firstWindow} → ${t.lastSteadyWindow}: ${t.lastOverFirst ?? 'n/a'}; done per CPU second the soak got: ${t.donePerCoreSLastOverFirst ?? 'n/a'})`,
    `  memory    (the main thread's heap; RSS is the process's) after warm-up heap ${s.memory.afterWarmup.heapMB} MB (code ${s.memory.afterWarmup.codeMB}), RSS ${s.memory.afterWarmup.rssMB} MB; at the end heap ${s.memory.end.heapMB} MB (code ${s.memory.end.codeMB}), RSS ${s.memory.end.rssMB} MB (${s.gc ? 'after forced GC' : 'NO forced GC: run with --expose-gc'}): heap end ÷ warm-up ${s.memory.heapEndOverWarmup} — target ±10 % ${met(s.targets.heap)}`,
    `  accounting lost ${a.lost}, duplicated ${a.duplicated}, ran after settled ${a.ranAfterSettled} (a start after its subtask.end, or after its run's outcome with ctx.signal not aborted; starts after the outcome ${a.startedAfterSettled}, of which with the signal aborted ${a.startedAfterSettledAborted}); done never started ${a.doneNeverStarted}, wrong outputs ${a.wrongOutput}, faults swallowed ${a.faultSwallowed}; subtask.end events missing ${a.endEventsMissing}, doubled ${a.endEventsDoubled}`,
    `             cancelled after a subtask.start event, with no subtask.end event (a run's cancel emits none): ${a.startedCancelledNoEndEvent}`,
    `             re-run after their thread died (finished but unreported, docs/pool.md "Batching"): ${a.rerunAfterThreadDeath}`,
    `  runs      done ${s.runs.done}, failed ${s.runs.failed}, cancelled ${s.runs.cancelled}, rejected ${s.runs.rejected}; cancels requested ${s.runs.cancelRequested}, runs with a permanent fault ${s.runs.withPermanent}; run errors: ${codes(s.runErrorCodes)}`,
    `  subtasks  done ${s.subtasks.done}, failed ${s.subtasks.failed}, cancelled ${s.subtasks.cancelled}; retries ${s.retries}, isolated ${s.isolated}`,
    `  injected  (subtasks that started on a thread) throw ${s.injected.throw}, crash ${s.injected.crash}, hang ${s.injected.hang}, stall ${s.injected.stall}; permanent ${s.injected.permanent}`,
    `  errors    final: ${codes(s.finalErrorCodes)}`,
    `            attempts: ${codes(s.attemptErrorCodes)}`,
    `            on subtasks with no injected fault: ${codes(s.collateralErrorCodes)}`,
    `  experts   restarts ${codes(s.expertRestarts)}; threads started ${s.threads.incarnations}, died mid-subtask ${s.threads.diedMidSubtask} (of an injected crash or hang ${s.threads.killedByFaults})`,
    ...(a.examples.length
      ? ['  details (the first 20)', ...a.examples.map((e) => `    ${e}`)]
      : []),
  ].join('\n');
}

main().then(
  (code) => process.exit(code),
  (error) => {
    log(`soak: crashed: ${error?.stack ?? error}`);
    process.exit(1);
  },
);
