/**
 * troupe: an actor-model runtime for Node.js. This is the one public entry; everything not
 * exported here is internal.
 *
 * @module troupe
 */

export { defineExpert } from './actors/experts.js';
export {
  describe,
  deserializeError,
  ERROR_CODES,
  type ErrorCode,
  isTroupeError,
  serializeError,
  TroupeError,
  type TroupeErrorJSON,
  type TroupeErrorOptions,
  type WireError,
} from './errors.js';
export type { Executor } from './executors/executor.js';
export {
  type ExecutorFactory,
  type RedisExecutorOptions,
  redisExecutor,
} from './executors/redis/options.js';
export { type RedisWorkerOptions, redisWorker } from './executors/redis/serve.js';
export type { RedisWorker } from './executors/redis/worker.js';
export type {
  AbortListener,
  AskOptions as WorkerAskOptions,
  ContextSignal,
  TaskContext as WorkerContext,
} from './pool/context.js';
export type {
  ContextHost,
  ModuleRegistration,
  PoolCloseOptions,
  PoolOptions,
  PoolRunOptions,
} from './pool/options.js';
export { createPool, Pool } from './pool/pool.js';
export type { ContextOp } from './pool/protocol.js';
export type { DurationSummary, ModuleStats, PoolStats, ThreadStats } from './pool/stats.js';
export { type ReportDiagram, type ReportOptions, toReportHtml } from './report/report.js';
export { type ChromeTrace, type TraceEvent, toChromeTrace } from './trace/chrome.js';
export { createTroupe, type Troupe } from './troupe.js';
export type {
  AskOptions,
  AttemptRecord,
  Clock,
  Contribution,
  ExpertDefinition,
  ExpertInfo,
  ExpertRunMetrics,
  Level,
  MessageContext,
  MessageFailure,
  MessageRecord,
  Outcome,
  OutcomeBase,
  Plan,
  Progress,
  Recipient,
  RunEvent,
  RunMetrics,
  RunOptions,
  Stage,
  Subtask,
  SubtaskRecord,
  SubtaskStatus,
  SupervisionOptions,
  TroupeOptions,
  TroupeStats,
} from './types.js';
export { VERSION } from './version.js';
