// createTroupe({ openTelemetry: true }): a run is a `troupe.run` span under the caller's active
// span, with a `troupe.attempt` child per attempt and the stages as events, checked with the
// SDK's in-memory exporter; the spans match the outcome's records.
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTroupe, defineExpert, type Troupe } from '../../dist/src/index.js';
import { fixture } from '../helpers.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
// What a service's SDK registers: spans know which span is active across awaits.
const contexts = new AsyncLocalStorageContextManager();
beforeAll(() => {
  context.setGlobalContextManager(contexts.enable());
  trace.setGlobalTracerProvider(provider);
});
afterAll(async () => {
  trace.disable();
  context.disable();
  await provider.shutdown();
});

const open: Troupe[] = [];
afterEach(async () => {
  exporter.reset();
  await Promise.all(open.splice(0).map((t) => t.close({ force: true })));
});

const team = () => {
  const t = createTroupe({
    threads: 2,
    retryBackoffMs: 1,
    openTelemetry: true,
    experts: [
      defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave'), concurrency: 2 }),
    ],
  });
  open.push(t);
  return t;
};

describe('OpenTelemetry', () => {
  it('a run is a span with a child per attempt, its stages as events, under the active span', async () => {
    const t = team();
    const tracer = trace.getTracer('service');
    const outcome = await tracer.startActiveSpan('request', async (request) => {
      const result = await t.run(
        {
          name: 'traced',
          analyze: () => [
            { id: 'a', needs: 's', input: { op: 'echo', value: 1 } },
            { id: 'flaky', needs: 's', input: { op: 'failUntil', okAt: 2 } },
          ],
        },
        null,
      );
      request.end();
      return result;
    });
    expect(outcome.status).toBe('done');
    const spans = exporter.getFinishedSpans();
    const request = spans.find((s) => s.name === 'request');
    const run = spans.find((s) => s.name === 'troupe.run');
    expect(run?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
    expect(run?.attributes).toMatchObject({
      'troupe.run.id': outcome.runId,
      'troupe.plan': 'traced',
      'troupe.status': 'done',
      'troupe.subtasks': 2,
    });
    expect(run?.events.map((e) => e.attributes?.['troupe.stage'])).toEqual([
      'analyzing',
      'identifying',
      'coordinating',
      'integrating',
      'validating',
      'done',
    ]);
    const attempts = spans.filter((s) => s.name === 'troupe.attempt');
    expect(attempts).toHaveLength(outcome.records.reduce((n, r) => n + r.attempts, 0));
    for (const a of attempts) expect(a.parentSpanContext?.spanId).toBe(run?.spanContext().spanId);
    const flaky = attempts
      .filter((a) => a.attributes['troupe.subtask'] === 'flaky')
      .map((a) => [a.attributes['troupe.attempt'], a.attributes['troupe.outcome'], a.status.code]);
    expect(flaky).toEqual([
      [1, 'failed', 2],
      [2, 'done', 0],
    ]);
  });

  it('a failed run says so on its span', async () => {
    const t = team();
    const outcome = await context.with(context.active(), () =>
      t.run({ analyze: () => [{ id: 'x', needs: 's', input: { op: 'throw' } }] }, null),
    );
    expect(outcome.status).toBe('failed');
    const run = exporter.getFinishedSpans().find((s) => s.name === 'troupe.run');
    expect(run?.status.code).toBe(2);
    expect(run?.status.message).toMatch(/^E_TASK_FAILED: /);
  });

  it('refuses what is not a boolean', () => {
    expect(() =>
      createTroupe({
        experts: [defineExpert({ name: 'w', skills: { s: 1 }, module: fixture('behave') })],
        openTelemetry: 'yes' as never,
      }),
    ).toThrow(/options\.openTelemetry: expected a boolean, got "yes"/);
  });
});
