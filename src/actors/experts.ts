/** Expert definitions: checked once, with messages that name the field and what was given. */
import { pathToFileURL } from 'node:url';
import { describe, invalidOption } from '../errors.js';
import { isDuration, isPositiveInteger } from '../pool/options.js';
import { MAX_BATCH } from '../pool/protocol.js';
import type { ExpertDefinition, Level } from '../types.js';

const NAME = /^[A-Za-z][\w.-]*$/;

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

export function resolveExpert(definition: unknown, at: string): ResolvedExpert {
  if (definition === null || typeof definition !== 'object')
    throw invalidOption(at, 'an expert definition (an object)', definition);
  const d = definition as ExpertDefinition;
  if (typeof d.name !== 'string' || !NAME.test(d.name)) {
    throw invalidOption(
      `${at}.name`,
      'a name of letters, digits, "_", "-" or "." starting with a letter',
      d.name,
    );
  }
  if (d.name === 'coordinator' || /^run-\d+$/.test(d.name)) {
    throw invalidOption(
      `${at}.name`,
      'a name other than "coordinator" or "run-<n>" (the ids of the troupe\'s own actors)',
      d.name,
    );
  }
  at = `${at} "${d.name}"`;
  if (
    d.skills === null ||
    typeof d.skills !== 'object' ||
    Array.isArray(d.skills) ||
    Object.keys(d.skills).length === 0
  ) {
    throw invalidOption(
      `${at}.skills`,
      'an object of skill → level (1–5) with at least one skill',
      d.skills,
    );
  }
  for (const [skill, level] of Object.entries(d.skills)) {
    if (!(Number.isInteger(level) && level >= 1 && level <= 5)) {
      throw invalidOption(`${at}.skills.${skill}`, 'a level from 1 to 5', level);
    }
  }
  let href: string;
  if (d.module instanceof URL && d.module.protocol === 'file:') href = d.module.href;
  else if (typeof d.module === 'string' && d.module.startsWith('file:')) href = d.module;
  else if (typeof d.module === 'string' && d.module.startsWith('/'))
    href = pathToFileURL(d.module).href;
  else
    throw invalidOption(
      `${at}.module`,
      'a file: URL or an absolute path to the worker module',
      d.module,
    );
  const concurrency = d.concurrency ?? 1;
  if (!isPositiveInteger(concurrency))
    throw invalidOption(`${at}.concurrency`, 'a positive integer', concurrency);
  const lookahead = d.lookahead ?? true;
  if (typeof lookahead !== 'boolean')
    throw invalidOption(`${at}.lookahead`, 'a boolean', lookahead);
  if (d.timeoutMs !== undefined && !isDuration(d.timeoutMs)) {
    throw invalidOption(`${at}.timeoutMs`, 'a duration in ms (a number >= 0)', d.timeoutMs);
  }
  if (d.attempts !== undefined && !isPositiveInteger(d.attempts)) {
    throw invalidOption(`${at}.attempts`, 'a positive integer', d.attempts);
  }
  const batch = d.batch ?? 'auto';
  if (batch !== 'auto' && !(isPositiveInteger(batch) && batch <= MAX_BATCH)) {
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
  return {
    name: d.name,
    skills: Object.freeze({ ...d.skills }),
    href,
    concurrency,
    lookahead,
    timeoutMs: d.timeoutMs,
    attempts: d.attempts,
    batch,
    validate: d.validate as ResolvedExpert['validate'],
    onMessage: d.onMessage,
    messages: d.messages,
  };
}

/** Runs an expert's `validate` on an output: undefined when accepted, else the reason. */
export function rejection(
  expert: ResolvedExpert,
  output: unknown,
  input: unknown,
): string | undefined {
  if (expert.validate === undefined) return undefined;
  let verdict: boolean | string | undefined;
  try {
    verdict = expert.validate(output, input);
  } catch (error) {
    return `validate threw: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (verdict === true || verdict === undefined) return undefined;
  if (verdict === false) return 'rejected by validate';
  return typeof verdict === 'string' ? verdict : `validate returned ${describe(verdict)}`;
}
