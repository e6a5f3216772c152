/**
 * A run as OpenTelemetry spans, for a service that already sends traces: `troupe.run`, a child
 * of whatever span is active when `troupe.run()` is called, with the stages as its events and a
 * child span per subtask attempt (`troupe.attempt`), timed from its hand-out to its result.
 * `@opentelemetry/api` is an optional peer, loaded only when `createTroupe({ openTelemetry })`
 * asks for it; the spans go wherever the service's registered tracer provider sends them.
 */
import { createRequire } from 'node:module';
import { TroupeError } from '../errors.js';
import type { Outcome } from '../types.js';
import { VERSION } from '../version.js';

/** The part of `@opentelemetry/api` troupe uses. */
interface Api {
  trace: {
    getTracer(name: string, version?: string): Tracer;
    setSpan(context: unknown, span: Span): unknown;
  };
  context: { active(): unknown };
  SpanStatusCode: { ERROR: number };
}
interface Tracer {
  startSpan(
    name: string,
    options: { startTime?: number; attributes?: Record<string, string | number> },
    context?: unknown,
  ): Span;
}
interface Span {
  setAttribute(key: string, value: string | number): void;
  addEvent(name: string, attributes: Record<string, string | number>, time?: number): void;
  setStatus(status: { code: number; message?: string }): void;
  end(time?: number): void;
}

/** A run's span, open from its admission to its end. */
export interface RunSpan {
  end(outcome: Outcome): void;
}

export class RunTelemetry {
  readonly #api: Api;
  readonly #tracer: Tracer;

  constructor(api: Api) {
    this.#api = api;
    this.#tracer = api.trace.getTracer('troupe', VERSION);
  }

  /** The run is admitted: its span starts, under the span active now. */
  start(runId: string, plan: string): RunSpan {
    const api = this.#api;
    const tracer = this.#tracer;
    const startedAt = Date.now();
    const span = tracer.startSpan(
      'troupe.run',
      { startTime: startedAt, attributes: { 'troupe.run.id': runId, 'troupe.plan': plan } },
      api.context.active(),
    );
    return {
      end(outcome) {
        const parent = api.trace.setSpan(api.context.active(), span);
        for (const s of outcome.stages)
          span.addEvent('troupe.stage', { 'troupe.stage': s.stage }, startedAt + s.atMs);
        for (const a of outcome.attempts) {
          const attributes: Record<string, string | number> = {
            'troupe.subtask': a.subtask,
            'troupe.expert': a.expert,
            'troupe.attempt': a.attempt,
            'troupe.outcome': a.status,
            'troupe.run_ms': a.runMs,
          };
          if (a.thread !== undefined) attributes['troupe.thread'] = a.thread;
          if (a.code !== undefined) attributes['troupe.error.code'] = a.code;
          const child = tracer.startSpan(
            'troupe.attempt',
            { startTime: startedAt + a.dispatchedAtMs, attributes },
            parent,
          );
          if (a.status === 'failed')
            child.setStatus({ code: api.SpanStatusCode.ERROR, message: a.code });
          child.end(startedAt + (a.endedAtMs ?? outcome.metrics.wallMs));
        }
        span.setAttribute('troupe.status', outcome.status);
        span.setAttribute('troupe.subtasks', outcome.records.length);
        span.setAttribute('troupe.parallelism', outcome.metrics.parallelism);
        if (outcome.status !== 'done')
          span.setStatus({
            code: api.SpanStatusCode.ERROR,
            message: `${outcome.error.code}: ${outcome.error.message}`,
          });
        span.end(startedAt + outcome.metrics.wallMs);
      },
    };
  }
}

/** `@opentelemetry/api`, loaded now, or a clear error if it is not installed. */
export function loadTelemetry(field: string): RunTelemetry {
  let api: Api;
  try {
    api = createRequire(import.meta.url)('@opentelemetry/api') as Api;
  } catch (error) {
    throw new TroupeError(
      'E_INVALID_OPTION',
      `${field}: needs @opentelemetry/api, an optional peer of troupe (npm install @opentelemetry/api)`,
      { cause: error, details: { field } },
    );
  }
  return new RunTelemetry(api);
}
