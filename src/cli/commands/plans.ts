/**
 * The plan commands: `troupe run`, `troupe validate`, `troupe experts` and `troupe schema`. The
 * plan machinery (zod, YAML, glob) loads only when one of them runs.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { InspectionEvent } from 'xstate';
import { isTroupeError } from '../../errors.js';
import { defined } from '../../fields.js';
import { DEFAULT_PORT as DEFAULT_INSPECT_PORT } from '../../inspect/port.js';
import type { Relay } from '../../inspect/relay.js';
import { parseJson } from '../../plans/json.js';
import type { CompiledPlan } from '../../plans/plan.js';
import type { ReportDiagram } from '../../report/report.js';
import type { Troupe } from '../../troupe.js';
import type { ExpertInfo, Outcome, RunEvent, TroupeOptions } from '../../types.js';
import { MAX_THREADS } from '../../validate.js';
import { type Flags, parseFlags, UsageError } from '../flags.js';
import { type Command, type CommandIO, EXIT } from '../registry.js';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

const PLAN_ERRORS = new Set(['E_PLAN_INVALID', 'E_OUTSIDE_PLAN', 'E_INVALID_OPTION']);

/** The flags of a plan command, and its one plan file. */
function parse(
  argv: string[],
  flags: Flags,
): { values: Record<string, string | boolean | undefined>; plan: string } {
  const { values, positionals } = parseFlags(argv, flags);
  if (positionals.length !== 1)
    throw new UsageError(
      `expected one plan file, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}`,
    );
  return { values, plan: positionals[0] as string };
}

/** Runs a command body, mapping bad usage and bad plans to exit 2 with one clear message. */
export async function guarded(
  name: string,
  usage: string,
  io: CommandIO,
  body: () => Promise<number>,
): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`troupe ${name}: ${error.message}\n\n${usage}\n`);
      return EXIT.usage;
    }
    if (isTroupeError(error) && PLAN_ERRORS.has(error.code)) {
      io.stderr(`troupe ${name}: ${error.code}: ${error.message}\n`);
      return EXIT.usage;
    }
    throw error;
  }
}

export async function load(plan: string, allowOutside: boolean): Promise<CompiledPlan> {
  const { loadPlan } = await import('../../plans/plan.js');
  return loadPlan(plan, { allowOutside });
}

/** Starts the plan's troupe and waits until every expert has been probed once. */
async function startTroupe(
  compiled: CompiledPlan,
  threads: number | undefined,
  signal?: AbortSignal,
  inspect?: TroupeOptions['inspect'],
  redis?: { url: string; prefix: string | undefined; io: CommandIO },
): Promise<Troupe> {
  const { createTroupe } = await import('../../troupe.js');
  let options: TroupeOptions = { ...compiled.troupeOptions, ...defined({ threads, inspect }) };
  let waiting: NodeJS.Timeout | undefined;
  if (redis !== undefined) {
    const { redisExecutor } = await import('../../executors/redis/options.js');
    const { LOCAL_POOL_KEYS } = await import('../../troupe.js');
    const executor = redisExecutor(defined({ connection: redis.url, prefix: redis.prefix }));
    // Said now, in one line, rather than as every expert's failed probes.
    const { checkReachable, readConnection } = await import('../../executors/redis/wire.js');
    await checkReachable(readConnection(redis.url, '--redis'), 5_000, 'troupe run');
    // The plan's local-thread policies are the workers' business now (their --threads).
    const rest: Record<string, unknown> = { ...options };
    for (const key of LOCAL_POOL_KEYS) delete rest[key];
    options = { ...(rest as unknown as TroupeOptions), executor };
    const names = compiled.troupeOptions.experts.map((e) => e.name).join(', ');
    waiting = setTimeout(
      () =>
        redis.io.stderr(
          `troupe run: waiting for a troupe worker to serve ${names} on ${executor.redis} (prefix ${executor.prefix}): start one with \`troupe worker ${compiled.file} --redis <url>\`\n`,
        ),
      2_000,
    );
  }
  const troupe = createTroupe(options);
  // Until every expert has been probed once, or Ctrl-C.
  await new Promise<void>((resolve) => {
    void troupe.probed().then(() => resolve());
    signal?.addEventListener('abort', () => resolve(), { once: true });
  });
  clearTimeout(waiting);
  return troupe;
}

/** Experts whose module did not load: a bad plan (exit 2), not a failed run. */
function loadFailures(compiled: CompiledPlan, experts: ExpertInfo[]): string[] {
  return experts.flatMap((e) => {
    const index = compiled.spec.experts.findIndex((x) => x.name === e.name);
    const moduleFault = e.faults.find((f) => f.code === 'E_MODULE_LOAD');
    return moduleFault === undefined
      ? []
      : [`experts[${index}] (${e.name}): ${moduleFault.message}`];
  });
}

function threadsOption(raw: string | boolean | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS)
    throw new UsageError(
      `--threads: expected an integer from 1 to ${MAX_THREADS}, got "${String(raw)}"`,
    );
  return n;
}

/** The run's input from `--input`, and the folder its relative folders are relative to. */
interface GivenInput {
  value: unknown;
  /** The input file's folder; the working directory for standard input. */
  baseDir: string;
}

export async function readInput(source: string | undefined): Promise<GivenInput | undefined> {
  if (source === undefined) return undefined;
  let text: string;
  try {
    if (source === '-') {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      text = Buffer.concat(chunks).toString('utf8');
    } else text = await readFile(source, 'utf8');
  } catch (error) {
    throw new UsageError(`--input: cannot read ${source}: ${(error as Error).message}`);
  }
  const parsed = parseJson(text);
  if (!parsed.ok) {
    const { line, column, message } = parsed.error;
    throw new UsageError(
      `--input: ${source === '-' ? 'standard input' : source}:${line}:${column}: not JSON: ${message}`,
    );
  }
  return {
    value: parsed.value,
    baseDir: source === '-' ? process.cwd() : dirname(resolve(source)),
  };
}

// -------------------------------------------------------------------------------------------
// troupe run

export { DEFAULT_PORT as DEFAULT_INSPECT_PORT } from '../../inspect/port.js';
/** Seconds `--inspect` waits for the inspector page before the run starts. */
export const INSPECT_WAIT_S = 30;

/** An inspection log being written: one record a line (src/inspect/log.ts). */
interface InspectLog {
  write(event: InspectionEvent): void;
  close(): Promise<void>;
}

/**
 * Refuses an output file that cannot be written before the run starts, not after it (a file
 * made only to check is taken away again: the run writes it when it ends).
 */
async function checkWritable(flag: string, file: string): Promise<void> {
  const { open, stat, unlink } = await import('node:fs/promises');
  const existed = await stat(file).then(
    () => true,
    () => false,
  );
  try {
    await (await open(file, 'a')).close();
  } catch (error) {
    throw new UsageError(`${flag}: cannot write ${file}: ${(error as Error).message}`);
  }
  if (!existed) await unlink(file).catch(() => {});
}

/** The report page's diagrams: the machines as SVG, or as Mermaid text without @viz-js/viz. */
async function reportDiagrams(io: CommandIO): Promise<ReportDiagram[]> {
  const viz = await import('../../viz/machines.js');
  const out: ReportDiagram[] = [];
  let drawn = true;
  for (const [name, machine] of Object.entries(viz.MACHINES)) {
    const graph = viz.machineGraph(machine);
    if (drawn)
      try {
        out.push({ name: `${name} machine`, svg: await viz.toSvg(viz.toDot(graph)) });
        continue;
      } catch (error) {
        if ((error as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw error;
        drawn = false;
        io.stderr(
          'troupe run: --report shows the machines as Mermaid text: drawing them needs @viz-js/viz, an optional peer of troupe (npm install @viz-js/viz)\n',
        );
      }
    out.push({ name: `${name} machine`, mermaid: viz.toMermaid(graph) });
  }
  return out;
}

async function openInspectLog(file: string): Promise<InspectLog> {
  const { createWriteStream } = await import('node:fs');
  const { toRecord } = await import('../../inspect/log.js');
  const out = createWriteStream(file);
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', (error) =>
      reject(new UsageError(`--inspect-log: cannot write ${file}: ${error.message}`)),
    );
  });
  const started = performance.now();
  return {
    write(event) {
      const record = toRecord(event, performance.now() - started);
      if (record !== undefined) out.write(`${JSON.stringify(record)}\n`);
    },
    close: () => new Promise<void>((resolve) => out.end(() => resolve())),
  };
}

/** What `inspect` gets: the relay's inspector, the log, both, or neither. */
function inspectTarget(
  relay: Relay | undefined,
  log: InspectLog | undefined,
): TroupeOptions['inspect'] {
  if (log === undefined) return relay?.inspector;
  if (relay === undefined) return (event) => log.write(event);
  const next = relay.inspector.inspect;
  return (event) => {
    next.next?.(event);
    log.write(event);
  };
}

/** The relay, or a usage error that says what is missing (the package) or taken (the port). */
export async function openRelay(port: number): Promise<Relay> {
  const { InspectorMissing, startRelay } = await import('../../inspect/relay.js');
  try {
    return await startRelay({ port });
  } catch (error) {
    if (error instanceof InspectorMissing) throw new UsageError(error.message);
    const code = (error as { code?: unknown }).code;
    if (code === 'EADDRINUSE' || code === 'EACCES')
      throw new UsageError(
        `--inspect: port ${port} on 127.0.0.1 cannot be used (${String(code)}); pick another with --inspect=<port>, or --inspect=0 for any free one`,
      );
    throw error;
  }
}

const RUN_USAGE = `Usage: troupe run <plan.json|plan.yaml> [--input file|-] [--threads N] [--json] [--inspect[=port]] [--inspect-log file] [--trace file] [--report file] [--allow-outside] [--redis url [--prefix name]]

Runs a plan: live progress on stderr when it is a terminal (done/total, threads at work and the
experts with work in hand, elapsed, ETA), then the integrated result and the run's metrics.
Ctrl-C cancels the run cleanly and still reports what finished.

Options:
  --input <file|->   the plan's input, as JSON (a file, or - for standard input); without it,
                     the plan's inputDefaults. A folder a glob takes from it ($input.<field>)
                     is relative to the input file's folder (to the working directory for -)
  --threads <n>      worker threads [default: the plan's policies.threads, else the cores]
  --json             one JSON document on stdout (status, result, metrics, records), nothing else
  --inspect[=port]   watch the run in the Stately inspector: serves a page on 127.0.0.1 (port
                     ${DEFAULT_INSPECT_PORT} by default, 0 for any free one), prints its URL, waits up to
                     ${INSPECT_WAIT_S} s for it to be opened, and closes it when the run ends. Needs the
                     optional @statelyai/inspect, and a network for the inspector's UI (stately.ai)
  --inspect-port <n> the same as --inspect=<n>
  --inspect-log <f>  write every inspection event there as JSON lines (troupe replay sends them
                     to the inspector again)
  --trace <file>     write the run as a Chrome trace (JSON) there: a lane per worker thread with
                     each attempt, the stages, the attempts waiting for a thread; open it in
                     ui.perfetto.dev or chrome://tracing
  --report <file>    write a report page (one HTML file that opens with no network): summary,
                     parallelism, a timeline of attempts per thread, experts' utilisation,
                     quality, failures and their causes, the state machines
  --allow-outside    let the plan load modules outside its folder and packages by name
  --redis <url>      run the experts' work on \`troupe worker\` processes (any machines) through
                     BullMQ on Redis: redis://[user:password@]host[:port][/db] or rediss://
  --prefix <name>    with --redis: the namespace of its keys, the workers' too [default: troupe]
  -h, --help         show this help

Exit codes: 0 done, 1 the run failed, 2 bad usage or a bad plan, 130 cancelled.
NO_COLOR turns colours off.`;

const RUN_FLAGS: Flags = {
  input: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
  inspect: { type: 'boolean' },
  'inspect-port': { type: 'string' },
  trace: { type: 'string' },
  report: { type: 'string' },
  'inspect-log': { type: 'string' },
  'allow-outside': { type: 'boolean' },
  redis: { type: 'string' },
  prefix: { type: 'string' },
};

/** `--inspect=9000` is `--inspect --inspect-port 9000` (Node's parser has no optional values). */
export function splitInspect(argv: string[]): string[] {
  return argv.flatMap((arg) =>
    arg.startsWith('--inspect=')
      ? ['--inspect', '--inspect-port', arg.slice('--inspect='.length)]
      : [arg],
  );
}

/** The relay's port: `--inspect=<port>`, an integer from 0 (any free one) to 65535. */
export function inspectPort(value: string | boolean | undefined): number {
  if (value === undefined) return DEFAULT_INSPECT_PORT;
  const port = Number(value);
  if (typeof value !== 'string' || !/^\d+$/.test(value) || port > 65_535)
    throw new UsageError(
      `--inspect=<port>: expected an integer from 0 to 65535, got ${JSON.stringify(value)}`,
    );
  return port;
}

export const runCommand: Command = {
  name: 'run',
  summary: 'run a plan file (JSON or YAML) and print the result and metrics',
  usage: RUN_USAGE,
  flags: RUN_FLAGS,
  run: (argv, io) =>
    guarded('run', RUN_USAGE, io, async () => {
      const { values, plan } = parse(splitInspect(argv), RUN_FLAGS);
      const threads = threadsOption(values.threads);
      const json = values.json === true;
      if (values['inspect-port'] !== undefined && values.inspect !== true)
        throw new UsageError(
          '--inspect-port is given with --inspect only (or write --inspect=<port>)',
        );
      const port = values.inspect === true ? inspectPort(values['inspect-port']) : undefined;
      const redisUrl = values.redis as string | undefined;
      if (redisUrl !== undefined && threads !== undefined)
        throw new UsageError(
          "--threads is the local threads' count: with --redis, give it to troupe worker",
        );
      if (values.prefix !== undefined && redisUrl === undefined)
        throw new UsageError('--prefix is given with --redis only');
      // With --json, stdout carries the document and nothing else: whatever the plan's modules
      // print (main thread or workers, whose output Node pipes through process.stdout) goes to
      // stderr, for as long as this process lives.
      let out = io;
      if (json) {
        const write = process.stdout.write.bind(process.stdout);
        process.stdout.write = process.stderr.write.bind(process.stderr) as typeof write;
        out = { stdout: (text) => void write(text), stderr: io.stderr };
      }
      // Ctrl-C from here on cancels: before the run, it stops at the next step; during it, the
      // run is cancelled and reports what finished. A second Ctrl-C quits at once.
      const controller = new AbortController();
      const onSigint = () => {
        if (controller.signal.aborted) process.exit(EXIT.cancelled);
        controller.abort(new Error('interrupted (SIGINT)'));
        if (values.input === '-') process.stdin.destroy();
      };
      process.on('SIGINT', onSigint);
      let troupe: Troupe | undefined;
      let relay: Relay | undefined;
      let closeLog: (() => Promise<void>) | undefined;
      try {
        const cancelledEarly = (): number => {
          out.stderr('troupe run: cancelled (Ctrl-C) before the run started\n');
          if (json)
            out.stdout(
              `${JSON.stringify({ status: 'cancelled', plan, stage: 'starting', error: { code: 'E_CANCELLED', message: 'interrupted before the run started' } })}\n`,
            );
          return EXIT.cancelled;
        };
        const given = await readInput(values.input as string | undefined).catch(
          (error: unknown) => {
            if (controller.signal.aborted) return undefined;
            throw error;
          },
        );
        if (controller.signal.aborted) return cancelledEarly();
        const compiled = await load(plan, values['allow-outside'] === true);
        if (controller.signal.aborted) return cancelledEarly();
        const input = compiled.resolveInput(given?.value, given?.baseDir);
        for (const flag of ['trace', 'report'] as const) {
          const file = values[flag];
          if (typeof file === 'string') await checkWritable(`--${flag}`, file);
        }
        if (port !== undefined) {
          relay = await openRelay(port);
          out.stderr(
            `troupe run: inspect this run at ${relay.url} (the Stately inspector loads from stately.ai); waiting up to ${INSPECT_WAIT_S} s for it to connect\n`,
          );
          if (!(await relay.connected(INSPECT_WAIT_S * 1000)))
            out.stderr(
              'troupe run: no inspector connected; the run starts, and a page opened now still gets it\n',
            );
        }
        const log =
          typeof values['inspect-log'] === 'string'
            ? await openInspectLog(values['inspect-log'])
            : undefined;
        closeLog = log?.close;
        const watch = inspectTarget(relay, log);
        try {
          troupe = await startTroupe(
            compiled,
            threads,
            controller.signal,
            watch,
            redisUrl === undefined
              ? undefined
              : { url: redisUrl, prefix: values.prefix as string | undefined, io: out },
          );
        } catch (error) {
          if (!isTroupeError(error, 'E_UNAVAILABLE')) throw error;
          out.stderr(`${error.code}: ${error.message}\n`);
          return EXIT.failed;
        }
        if (controller.signal.aborted) return cancelledEarly();
        const failures = loadFailures(compiled, troupe.experts());
        if (failures.length > 0) {
          out.stderr(`troupe run: E_MODULE_LOAD: ${compiled.file}: ${failures.join('; ')}\n`);
          return EXIT.usage;
        }
        const progress =
          !json && process.stderr.isTTY === true
            ? new ProgressLine(
                io,
                threads ?? compiled.troupeOptions.threads ?? availableParallelism(),
              )
            : undefined;
        const running = troupe;
        let outcome: Outcome;
        try {
          outcome = await running.run(compiled.plan, input, {
            ...compiled.runOptions,
            signal: controller.signal,
            ...(progress === undefined ? {} : { onEvent: (e) => progress.event(e, running) }),
          });
        } finally {
          progress?.end();
        }
        if (typeof values.trace === 'string') {
          const { toChromeTrace } = await import('../../trace/chrome.js');
          await writeFile(values.trace, `${JSON.stringify(toChromeTrace(outcome))}\n`);
        }
        if (typeof values.report === 'string') {
          const { toReportHtml } = await import('../../report/report.js');
          const diagrams = await reportDiagrams(out);
          await writeFile(values.report, toReportHtml(outcome, { diagrams }));
        }
        report(out, compiled, outcome, json);
        if (outcome.status === 'done') return EXIT.ok;
        if (outcome.status === 'cancelled') return EXIT.cancelled;
        if (isTroupeError(outcome.error) && PLAN_ERRORS.has(outcome.error.code)) return EXIT.usage;
        return EXIT.failed;
      } finally {
        process.off('SIGINT', onSigint);
        await troupe?.close({ force: true });
        await relay?.close();
        await closeLog?.();
      }
    }),
};

/** What `troupe run --json` prints: one document. */
function runReport(compiled: CompiledPlan, outcome: Outcome): Record<string, unknown> {
  const base = {
    status: outcome.status,
    plan: compiled.name,
    file: compiled.file,
    runId: outcome.runId,
    metrics: outcome.metrics,
    records: outcome.records.map((r) => ({
      id: r.id,
      needs: r.needs,
      status: r.status,
      expert: r.expert ?? null,
      attempts: r.attempts,
      runMs: r.runMs,
      startedAtMs: r.startedAtMs ?? null,
      endedAtMs: r.endedAtMs,
      ...(r.error === undefined ? {} : { error: { code: r.error.code, message: r.error.message } }),
    })),
  };
  if (outcome.status === 'done')
    return { ...base, result: outcome.result, quality: outcome.quality ?? null };
  return {
    ...base,
    stage: outcome.stage,
    error: { code: outcome.error.code, message: outcome.error.message },
  };
}

/**
 * stdout holds the result and nothing else (with --json, the one document); what went wrong, what
 * had finished and the run's figures go to stderr.
 */
function report(io: CommandIO, compiled: CompiledPlan, outcome: Outcome, json: boolean): void {
  const m = outcome.metrics;
  if (json) io.stdout(`${JSON.stringify(runReport(compiled, outcome))}\n`);
  else if (outcome.status === 'done') {
    const quality =
      outcome.quality === undefined ? '' : `\n\nquality: ${JSON.stringify(outcome.quality)}`;
    io.stdout(`${JSON.stringify(outcome.result, null, 2)}${quality}\n`);
  }
  if (outcome.status !== 'done') {
    const finished = outcome.records.filter((r) => r.status === 'done').map((r) => r.id);
    const shown = finished.slice(0, 20).join(', ') + (finished.length > 20 ? ', …' : '');
    io.stderr(
      `troupe run: ${outcome.status} while ${outcome.stage}: ${outcome.error.code}: ${outcome.error.message}\n` +
        `${finished.length} of ${outcome.records.length} subtasks had finished${finished.length > 0 ? `: ${shown}` : ''}\n`,
    );
  }
  io.stderr(
    `${compiled.name}: ${outcome.status}; ${m.subtasks} subtasks, ${m.wallMs.toFixed(0)} ms wall, parallelism ${m.parallelism.toFixed(2)} on ${m.threads} threads, ${m.retries} retries, ${m.messages} messages\n`,
  );
}

/**
 * One line on stderr, redrawn at most 10 times a second: done/total, the threads at work and the
 * experts with work in hand, elapsed, ETA.
 *
 * What it can see is each expert's `active`: subtasks handed to it and not ended, which counts
 * those taken ahead (waiting in the pool or a thread's port) with those running. Only the pool
 * knows which of them a thread has begun, so the line shows what must be true — at most
 * `threads` run at once — and names the experts with work in hand, without a count per expert
 * (an `active` of 272 on 2 threads is not 272 at work).
 */
class ProgressLine {
  readonly #io: CommandIO;
  readonly #threads: number;
  readonly #started = Date.now();
  readonly #color = process.env.NO_COLOR === undefined || process.env.NO_COLOR === '';
  #total = 0;
  #done = 0;
  #last = 0;

  constructor(io: CommandIO, threads: number) {
    this.#io = io;
    this.#threads = threads;
  }

  event(event: RunEvent, troupe: Troupe): void {
    if (event.type === 'stage' && event.subtasks !== undefined) this.#total = event.subtasks;
    if (event.type === 'subtask.end') this.#done++;
    if (this.#total === 0) return;
    const now = Date.now();
    if (now - this.#last < 100) return;
    this.#last = now;
    const experts = troupe.experts().filter((e) => e.active > 0);
    const handed = experts.reduce((sum, e) => sum + e.active, 0);
    const elapsed = (now - this.#started) / 1000;
    const eta = this.#done > 0 ? (elapsed / this.#done) * (this.#total - this.#done) : undefined;
    const work =
      experts.length === 0
        ? 'idle'
        : `${Math.min(handed, this.#threads)}/${this.#threads} threads: ${experts.map((e) => e.name).join(', ')}`;
    const bold = (t: string) => (this.#color ? `\u001b[1m${t}\u001b[22m` : t);
    this.#io.stderr(
      `\r\u001b[2K${bold(`${this.#done}/${this.#total}`)} · ${work} · ${elapsed.toFixed(1)} s${eta === undefined ? '' : ` · ETA ${eta.toFixed(1)} s`}`,
    );
  }

  end(): void {
    if (this.#last > 0) this.#io.stderr('\r\u001b[2K');
  }
}

// -------------------------------------------------------------------------------------------
// troupe validate, troupe experts, troupe schema

const VALIDATE_USAGE = `Usage: troupe validate <plan.json|plan.yaml> [--input file|-] [--allow-outside]

Checks a plan without running it: the schema, that every module is inside the plan's folder and
exists, the main-thread exports it names, each expert's module and probe on a worker thread, and
the analysis expanded as a run would expand it (fan-outs, and globs that match nothing).

A fan-out that needs a field of the run's input (a glob's cwd "$input.dir", items "files") is
checked on --input if given, else on the plan's inputDefaults; with neither, it is not checked,
and the command says so on stderr (exit 0: the plan may still be right for the input it gets).

Options:
  --input <file|->   the input to check the analysis on, as JSON (a file, or - for standard input)
  --allow-outside    let the plan load modules outside its folder and packages by name
  -h, --help         show this help

Exit codes: 0 valid, 2 bad usage or a bad plan.`;

const VALIDATE_FLAGS: Flags = {
  input: { type: 'string' },
  'allow-outside': { type: 'boolean' },
};

export const validateCommand: Command = {
  name: 'validate',
  summary: 'check a plan file: schema, modules, exports, probes and fan-outs, without running it',
  usage: VALIDATE_USAGE,
  flags: VALIDATE_FLAGS,
  run: (argv, io) =>
    guarded('validate', VALIDATE_USAGE, io, async () => {
      const { values, plan } = parse(argv, VALIDATE_FLAGS);
      const given = await readInput(values.input as string | undefined);
      const compiled = await load(plan, values['allow-outside'] === true);
      // The analysis first: it needs no thread, and a glob that matches nothing is the likelier mistake.
      const check = await compiled.checkAnalysis(given);
      const troupe = await startTroupe(compiled, 1);
      try {
        const experts = troupe.experts();
        const failed = experts.filter((e) => e.probe?.ok !== true);
        if (failed.length > 0) {
          const problems = failed.map((e) => {
            const index = compiled.spec.experts.findIndex((x) => x.name === e.name);
            return `experts[${index}] (${e.name}): ${e.probe?.error ?? e.reason ?? e.state}`;
          });
          io.stderr(`troupe validate: ${compiled.file}: ${problems.join('; ')}\n`);
          return EXIT.usage;
        }
        const { stages, subtasks } = compiled.spec.analysis;
        const analysis =
          stages === undefined
            ? plural(subtasks?.length ?? 0, 'subtask')
            : `${plural(stages.length, 'stage')} (${stages.map((s) => s.name).join(', ')})${check.unchecked.length === 0 ? `, ${plural(check.subtasks, 'subtask')}` : ''}`;
        io.stdout(
          `${compiled.file}: valid — ${plural(experts.length, 'expert')} probed, analysis: ${analysis}\n`,
        );
        if (check.unchecked.length > 0)
          io.stderr(
            `troupe validate: not checked without an input (pass --input): ${check.unchecked.join(', ')}\n`,
          );
        return EXIT.ok;
      } finally {
        await troupe.close({ force: true });
      }
    }),
};

const EXPERTS_USAGE = `Usage: troupe experts <plan.json|plan.yaml> [--json] [--allow-outside]

Lists the plan's experts: skills and levels, concurrency, how they take messages, and the result
of probing each on a worker thread.

Options:
  --json             one JSON document on stdout: an array of { name, skills, concurrency,
                     messages, probe }
  --allow-outside    let the plan load modules outside its folder and packages by name
  -h, --help         show this help

Exit codes: 0 every probe passed, 2 bad usage, a bad plan or a failed probe.`;

const EXPERTS_FLAGS: Flags = {
  json: { type: 'boolean' },
  'allow-outside': { type: 'boolean' },
};

export const expertsCommand: Command = {
  name: 'experts',
  summary: "list a plan's experts, their skills and levels, and their probe results",
  usage: EXPERTS_USAGE,
  flags: EXPERTS_FLAGS,
  run: (argv, io) =>
    guarded('experts', EXPERTS_USAGE, io, async () => {
      const { values, plan } = parse(argv, EXPERTS_FLAGS);
      const compiled = await load(plan, values['allow-outside'] === true);
      const troupe = await startTroupe(compiled, 1);
      try {
        const rows = troupe.experts().map((e) => {
          const entry = compiled.spec.experts.find((x) => x.name === e.name);
          return {
            name: e.name,
            skills: e.skills,
            concurrency: e.concurrency,
            messages:
              entry?.messages === 'heavy'
                ? 'heavy'
                : entry?.onMessage !== undefined
                  ? 'inline'
                  : 'none',
            probe: e.probe?.ok === true ? 'ok' : `failed: ${e.probe?.error ?? e.reason ?? e.state}`,
          };
        });
        if (values.json === true) {
          io.stdout(`${JSON.stringify(rows)}\n`);
        } else {
          const width = Math.max(6, ...rows.map((r) => r.name.length));
          for (const r of rows) {
            const skills = Object.entries(r.skills)
              .map(([s, l]) => `${s} ${l}`)
              .join(', ');
            io.stdout(
              `${r.name.padEnd(width)}  ${skills}; concurrency ${r.concurrency}; messages ${r.messages}; probe ${r.probe}\n`,
            );
          }
        }
        return rows.every((r) => r.probe === 'ok') ? EXIT.ok : EXIT.usage;
      } finally {
        await troupe.close({ force: true });
      }
    }),
};

const SCHEMA_USAGE = `Usage: troupe schema

Prints the JSON Schema of plan files (generated from the schema troupe checks plans with). Point
an editor at it with "$schema" in a JSON plan, or the yaml-language-server comment in YAML.

Options:
  -h, --help  show this help`;

export const schemaCommand: Command = {
  name: 'schema',
  summary: 'print the JSON Schema of plan files',
  usage: SCHEMA_USAGE,
  flags: {},
  run: (argv, io) =>
    guarded('schema', SCHEMA_USAGE, io, async () => {
      const { positionals } = parseFlags(argv, {});
      if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
      const { planJsonSchema } = await import('../../plans/schema.js');
      io.stdout(`${JSON.stringify(planJsonSchema(), null, 2)}\n`);
      return EXIT.ok;
    }),
};
