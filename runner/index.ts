/** The runner's public API: everything an embedding program needs, and nothing else. */

export {
  type ApiEvent,
  type ApiServer,
  type BuildApiOptions,
  buildApi,
  type CreatedSandbox,
  type CreateSandboxBody,
  type ErrorEnvelope,
  type OpenTakeover,
  type SandboxView,
  type ServeOptions,
  serve,
} from './api/index.ts';
export {
  type EventsOptions,
  isRunnerApiError,
  RunnerApiError,
  RunnerClient,
  type RunnerClientOptions,
  type StreamEvent,
  type TakeoverSnapshot,
} from './client/index.ts';
export { ERROR_CODES, type ErrorCode, GrexalError, type Problem, ValidationError } from './errors.ts';
export type { PoolRequest, PoolStatus } from './pool/index.ts';
export type { ContainerRuntime, EngineInfo, SandboxLimits } from './runtime/index.ts';
export { DockerRuntime } from './runtime/index.ts';
export {
  type CreateSandboxInput,
  Runner,
  type RunnerOptions,
  Sandbox,
  type SandboxEvent,
  type SandboxExit,
  type SandboxState,
} from './sandbox/index.ts';
