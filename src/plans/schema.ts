/**
 * The plan file's schema: one zod source for checking plans (every error names its path in the
 * file) and for the JSON Schema that `troupe schema` prints.
 */
import { z } from 'zod';
import { isResourceLimit, RESOURCE_LIMIT_BOUNDS, RESOURCE_LIMIT_KEYS } from '../pool/options.js';
import { MAX_BATCH } from '../pool/protocol.js';
import {
  LEVEL,
  MAX_ATTEMPTS,
  MAX_DURATION_MS,
  MAX_INT32,
  MAX_LEVEL,
  MAX_THREADS,
  MIN_LEVEL,
  NAME,
  NAME_PATTERN,
} from '../validate.js';

const level = `expected ${LEVEL}`;
const Level = z
  .number({ error: level })
  .int({ error: level })
  .min(MIN_LEVEL, { error: level })
  .max(MAX_LEVEL, { error: level });
// The library refuses the same bounds (src/validate.ts): a plan past one would fail at run time.
const longest = `${MAX_DURATION_MS} (2^31 - 1, about 24.8 days: the longest a timer can wait)`;
const duration = `expected a duration in ms from 0 to ${longest}`;
const Duration = z
  .number({ error: duration })
  .min(0, { error: duration })
  .max(MAX_DURATION_MS, { error: duration });
const above0 = `expected a duration in ms above 0, at most ${longest}`;
const DurationAbove0 = z
  .number({ error: above0 })
  .gt(0, { error: above0 })
  .max(MAX_DURATION_MS, { error: above0 });
const positive = 'expected a positive integer';
const Positive = z.number({ error: positive }).int({ error: positive }).min(1, { error: positive });
/** An integer from 1 to `max`; the message names the bound and what holds it. */
const Bounded = (max: number, why: string) => {
  const message = `expected an integer from 1 to ${max} (${why})`;
  return z
    .number({ error: message })
    .int({ error: message })
    .min(1, { error: message })
    .max(max, { error: message });
};
const Attempts = Bounded(MAX_ATTEMPTS, 'the most attempts a subtask can count');
const Count = Bounded(MAX_INT32, 'a 32-bit count');
const Name = z
  .string({ error: 'expected a name' })
  .regex(NAME_PATTERN, { error: `expected ${NAME}` });
const batchError = `expected 'auto' or an integer from 1 to ${MAX_BATCH}`;
const Text = (what: string) =>
  z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });

/** An expert's own `resourceLimits`: the sizes in MB the pool accepts, with its bounds. */
const ResourceLimitsSchema = z
  .strictObject(
    Object.fromEntries(
      RESOURCE_LIMIT_KEYS.map((key) => {
        const { expected } = RESOURCE_LIMIT_BOUNDS[key];
        const size = z
          .number({ error: `expected ${expected}` })
          .refine((value) => isResourceLimit(key, value), { error: `expected ${expected}` });
        return [key, size.optional()];
      }),
    ) as Record<(typeof RESOURCE_LIMIT_KEYS)[number], z.ZodOptional<z.ZodNumber>>,
  )
  .describe(
    "heap and stack limits in MB for this expert's own threads (worker_threads ResourceLimits)",
  );

/** A function exported by a main-thread module of the plan: `{ module, export? }`. */
export const ModuleExport = z
  .strictObject({
    module: Text('a module path relative to the plan file'),
    export: Text('an export name').optional().describe('the export to call; default "default"'),
  })
  .describe('a function exported by a module next to the plan (loaded on the main thread)');

export const ExpertSchema = z
  .strictObject({
    name: Name,
    module: Text('a module path relative to the plan file').describe(
      'the worker module: its default export does the work, an optional probe export is checked before the first delegation',
    ),
    skills: z
      .record(Text('a skill name'), Level, { error: 'expected an object of skill → level (1–5)' })
      .refine((skills) => Object.keys(skills).length > 0, { error: 'expected at least one skill' }),
    concurrency: Count.optional(),
    lookahead: z
      .boolean({ error: 'expected true or false' })
      .optional()
      .describe('take one subtask per thread ahead while concurrency ≥ threads (default true)'),
    timeoutMs: Duration.optional(),
    attempts: Attempts.optional(),
    batch: z
      .union(
        [
          z.literal('auto'),
          z
            .number()
            .int({ error: batchError })
            .min(1, { error: batchError })
            .max(MAX_BATCH, { error: batchError }),
        ],
        { error: batchError },
      )
      .optional(),
    messages: z.literal('heavy', { error: "expected 'heavy' (or leave it out)" }).optional(),
    resourceLimits: ResourceLimitsSchema.optional(),
    onMessage: ModuleExport.optional().describe('an inline message handler (main thread)'),
    validate: ModuleExport.optional().describe('checks each output on the main thread'),
  })
  .refine((e) => !(e.messages === 'heavy' && e.onMessage !== undefined), {
    error:
      "either messages: 'heavy' (the worker module's onMessage export) or an inline onMessage, not both",
    path: ['onMessage'],
  });

export const SubtaskSchema = z.strictObject({
  id: Text('a subtask id'),
  needs: Text('a skill name'),
  complexity: Level.optional(),
  input: z.unknown().optional(),
  after: z.array(Text('a subtask id')).optional(),
  timeoutMs: Duration.optional(),
  attempts: Attempts.optional(),
});

export const ForEachSchema = z
  .strictObject({
    glob: Text('a glob pattern, e.g. "**/*.txt"').optional(),
    cwd: Text('a folder')
      .optional()
      .describe(
        'where the glob looks: a folder relative to the plan file, or "$input.<field>" to take it from the run\'s input — relative to the input file\'s folder (troupe run --input in.json), else to the working directory (--input -, the library API), and to the plan file for a default from inputDefaults',
      ),
    maxFiles: Positive.optional(),
    maxBytes: Positive.optional().describe(
      'files are taken in name order while their total size stays within this many bytes',
    ),
    items: Text('a path into the input, e.g. "files" or "."').optional(),
    range: z
      .strictObject({
        from: z.number({ error: 'expected an integer' }).int({ error: 'expected an integer' }),
        to: z.number({ error: 'expected an integer' }).int({ error: 'expected an integer' }),
        step: Positive.optional(),
      })
      .optional(),
  })
  .refine((f) => [f.glob, f.items, f.range].filter((x) => x !== undefined).length === 1, {
    error: 'expected exactly one of glob, items or range',
  })
  .refine(
    (f) =>
      f.glob !== undefined ||
      (f.cwd === undefined && f.maxFiles === undefined && f.maxBytes === undefined),
    { error: 'cwd, maxFiles and maxBytes go with glob' },
  )
  .describe(
    'one subtask per file matching a glob, per item of the input, or per number of a range',
  );

export const StageSchema = z.strictObject({
  name: Name,
  needs: Text('a skill name'),
  complexity: Level.optional(),
  after: z.array(Name).optional().describe('stages whose every subtask must be done first'),
  afterEach: z
    .array(Name)
    .optional()
    .describe(
      'stages whose subtask for the same item must be done first (render:3 before filter:3)',
    ),
  forEach: ForEachSchema.optional(),
  input: z
    .unknown()
    .optional()
    .describe(
      'merged into each subtask input (with `item` from forEach); a string "$input.<field>" takes that field of the run input',
    ),
  timeoutMs: Duration.optional(),
  attempts: Attempts.optional(),
});

export const AnalysisSchema = z
  .strictObject({
    subtasks: z.array(SubtaskSchema).min(1, { error: 'expected at least one subtask' }).optional(),
    stages: z.array(StageSchema).min(1, { error: 'expected at least one stage' }).optional(),
  })
  .refine((a) => (a.subtasks === undefined) !== (a.stages === undefined), {
    error: 'expected either subtasks or stages',
  });

export const BUILTINS = ['collect', 'merge-objects', 'concat'] as const;

export const IntegrationSchema = z
  .strictObject({
    builtin: z.enum(BUILTINS, { error: `expected one of ${BUILTINS.join(', ')}` }).optional(),
    module: Text('a module path relative to the plan file').optional(),
    export: Text('an export name').optional(),
  })
  .refine((i) => (i.builtin === undefined) !== (i.module === undefined), {
    error: 'expected either builtin or module',
  })
  .refine((i) => i.builtin === undefined || i.export === undefined, {
    error: 'export goes with module',
  });

export const PoliciesSchema = z.strictObject({
  threads: Bounded(MAX_THREADS, 'the most worker threads of one pool').optional(),
  maxQueuedSubtasks: Positive.optional(),
  timeoutMs: Duration.optional(),
  attempts: Attempts.optional(),
  retryBackoffMs: Duration.optional(),
  maxRetryBackoffMs: Duration.optional(),
  deadlineMs: DurationAbove0.optional(),
  askTimeoutMs: DurationAbove0.optional(),
  cancelGraceMs: Duration.optional(),
  supervision: z
    .strictObject({
      intensity: Count.optional(),
      windowMs: Duration.optional(),
      restartBackoffMs: Duration.optional(),
      maxRestartBackoffMs: Duration.optional(),
      maxProbeFailures: Count.optional(),
    })
    .optional(),
});

export const PlanFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: Text('a plan name').optional(),
    experts: z
      .array(ExpertSchema, { error: 'expected a list of experts' })
      .min(1, { error: 'expected at least one expert' }),
    analysis: AnalysisSchema,
    integration: IntegrationSchema.optional(),
    validation: ModuleExport.optional().describe(
      "the plan's quality check of the integrated result",
    ),
    policies: PoliciesSchema.optional(),
    inputDefaults: z
      .record(z.string(), z.unknown(), { error: 'expected an object of input field → value' })
      .optional()
      .describe(
        "the run's input fields when the input leaves them out (no --input, or an input without them); a folder among them that a glob takes as its cwd is relative to the plan file",
      ),
  })
  .describe('a troupe plan: experts, analysis, integration, validation and policies');

export type PlanFile = z.infer<typeof PlanFileSchema>;
export type ExpertEntry = z.infer<typeof ExpertSchema>;
export type StageEntry = z.infer<typeof StageSchema>;

/** The JSON Schema of plan files, generated from the same source. */
export function planJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(PlanFileSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'troupe plan',
  };
}

/** What `troupe run --json` prints: one document. */
export const RunReportSchema = z.strictObject({
  status: z.enum(['done', 'failed', 'cancelled']),
  plan: z.string(),
  // The next four are absent only when Ctrl-C came before the run started.
  file: z.string().optional(),
  runId: z.string().optional(),
  result: z.unknown().optional(),
  quality: z.unknown().optional(),
  stage: z.string().optional(),
  error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
  metrics: z
    .looseObject({
      wallMs: z.number(),
      runMs: z.number(),
      parallelism: z.number(),
      threads: z.number(),
      subtasks: z.number(),
      messages: z.number(),
    })
    .optional(),
  records: z
    .array(
      z.strictObject({
        id: z.string(),
        needs: z.string(),
        status: z.enum(['done', 'failed', 'cancelled']),
        expert: z.string().nullable(),
        attempts: z.number(),
        runMs: z.number(),
        /** When its first attempt left for its expert, ms since the run started (null: never). */
        startedAtMs: z.number().nullable(),
        /** When it ended, ms since the run started. */
        endedAtMs: z.number(),
        error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
      }),
    )
    .optional(),
});
