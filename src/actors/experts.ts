/** Expert definitions: checked once, with messages that name the field and what was given. */
import { pathToFileURL } from 'node:url';
import type { ResourceLimits } from 'node:worker_threads';
import { describe, invalidOption, messageOf } from '../errors.js';
import { isInstance, path, readEntries, readFields } from '../fields.js';
import { resolveResourceLimits } from '../pool/options.js';
import { MAX_BATCH } from '../pool/protocol.js';
import type { ExpertDefinition, Level } from '../types.js';
import {
  DURATION,
  isDuration,
  isLevel,
  isPositiveInteger,
  LEVEL,
  MAX_ATTEMPTS,
  MAX_INT32,
  NAME,
  NAME_PATTERN,
} from '../validate.js';

/** A checked expert, with its defaults filled in. */
export interface ResolvedExpert {
  name: string;
  skills: Readonly<Record<string, Level>>;
  href: string;
  concurrency: number;
  lookahead: boolean;
  timeoutMs: number | undefined;
  attempts: number | undefined;
  batch: number | 'auto';
  validate: ((output: unknown, input: unknown) => boolean | string | undefined) | undefined;
  onMessage: ExpertDefinition['onMessage'];
  messages: 'heavy' | undefined;
  /** Heap and stack limits of threads of its own (its work then runs on them alone). */
  resourceLimits: ResourceLimits | undefined;
}

/**
 * Declares an expert. Checks the definition at once (`E_INVALID_OPTION` naming the field) and
 * returns it unchanged, typed by its input and output.
 * @example
 * const hasher = defineExpert<{ path: string }, { sha256: string }>({
 *   name: 'hasher', skills: { integrity: 3 }, module: new URL('./hasher.js', import.meta.url),
 * });
 */
export function defineExpert<In = unknown, Out = unknown>(
  definition: ExpertDefinition<In, Out>,
): ExpertDefinition<In, Out> {
  resolveExpert(definition, 'expert');
  return definition;
}

/** Every key of an {@link ExpertDefinition}. */
const EXPERT_KEYS = [
  'name',
  'skills',
  'module',
  'concurrency',
  'lookahead',
  'timeoutMs',
  'attempts',
  'batch',
  'validate',
  'onMessage',
  'messages',
  'resourceLimits',
] as const;

export function resolveExpert(definition: unknown, at: string): ResolvedExpert {
  const d = readFields(definition, at, EXPERT_KEYS, 'an expert definition (an object)');
  const name = d.name;
  if (typeof name !== 'string' || !NAME_PATTERN.test(name)) {
    throw invalidOption(`${at}.name`, NAME, name);
  }
  if (name === 'coordinator' || /^run-\d+$/.test(name)) {
    throw invalidOption(
      `${at}.name`,
      'a name other than "coordinator" or "run-<n>" (the ids of the troupe\'s own actors)',
      name,
    );
  }
  at = `${at} "${name}"`;
  const expected = 'an object of skill → level (1–5) with at least one skill';
  const entries = readEntries(d.skills, `${at}.skills`, expected);
  if (entries.length === 0) throw invalidOption(`${at}.skills`, expected, d.skills);
  // No prototype: a skill is found only if the expert has it (not "toString", not "__proto__").
  const skills = Object.create(null) as Record<string, Level>;
  for (const [skill, level] of entries) {
    if (!isLevel(level)) throw invalidOption(path(`${at}.skills`, skill), LEVEL, level);
    skills[skill] = level as Level;
  }
  const module = d.module;
  let href: string;
  if (isInstance(module, URL) && module.protocol === 'file:') href = module.href;
  else if (typeof module === 'string' && module.startsWith('file:')) href = module;
  else if (typeof module === 'string' && module.startsWith('/')) href = pathToFileURL(module).href;
  else
    throw invalidOption(
      `${at}.module`,
      'a file: URL or an absolute path to the worker module',
      module,
    );
  const concurrency = d.concurrency ?? 1;
  if (!isPositiveInteger(concurrency, MAX_INT32))
    throw invalidOption(`${at}.concurrency`, `an integer from 1 to ${MAX_INT32}`, concurrency);
  const lookahead = d.lookahead ?? true;
  if (typeof lookahead !== 'boolean')
    throw invalidOption(`${at}.lookahead`, 'a boolean', lookahead);
  if (d.timeoutMs !== undefined && !isDuration(d.timeoutMs))
    throw invalidOption(`${at}.timeoutMs`, DURATION, d.timeoutMs);
  if (d.attempts !== undefined && !isPositiveInteger(d.attempts, MAX_ATTEMPTS))
    throw invalidOption(`${at}.attempts`, `an integer from 1 to ${MAX_ATTEMPTS}`, d.attempts);
  const batch = d.batch ?? 'auto';
  if (batch !== 'auto' && !isPositiveInteger(batch, MAX_BATCH)) {
    throw invalidOption(`${at}.batch`, `'auto' or an integer from 1 to ${MAX_BATCH}`, batch);
  }
  if (d.validate !== undefined && typeof d.validate !== 'function')
    throw invalidOption(`${at}.validate`, 'a function', d.validate);
  if (d.onMessage !== undefined && typeof d.onMessage !== 'function')
    throw invalidOption(`${at}.onMessage`, 'a function (msg, from, ctx) => answer', d.onMessage);
  if (d.messages !== undefined && d.messages !== 'heavy')
    throw invalidOption(`${at}.messages`, "'heavy' (or leave it out)", d.messages);
  if (d.messages === 'heavy' && d.onMessage !== undefined) {
    throw invalidOption(
      `${at}.onMessage`,
      "no inline onMessage when messages is 'heavy' (the module's onMessage export takes them)",
      d.onMessage,
    );
  }
  const resourceLimits = resolveResourceLimits(d.resourceLimits, `${at}.resourceLimits`);
  return {
    name,
    skills: Object.freeze(skills),
    href,
    concurrency,
    lookahead,
    timeoutMs: d.timeoutMs as number | undefined,
    attempts: d.attempts as number | undefined,
    batch: batch as number | 'auto',
    validate: d.validate as ResolvedExpert['validate'],
    onMessage: d.onMessage as ExpertDefinition['onMessage'],
    messages: d.messages as 'heavy' | undefined,
    resourceLimits,
  };
}

/** Runs an expert's `validate` on an output: undefined when accepted, else the reason. */
export function rejection(
  expert: ResolvedExpert,
  output: unknown,
  input: unknown,
): string | undefined {
  if (expert.validate === undefined) return undefined;
  let verdict: unknown;
  try {
    verdict = expert.validate(output, input);
  } catch (error) {
    return `validate threw: ${messageOf(error)}`;
  }
  if (verdict === true || verdict === undefined) return undefined;
  if (verdict === false) return 'rejected by validate';
  if (typeof verdict === 'string') return verdict;
  // A promise is not a verdict: validate runs on the main thread, synchronously.
  return `validate returned ${describe(verdict)}, not true, false or a reason string`;
}
