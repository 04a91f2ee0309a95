/**
 * The orchestrator's HTTP API (`grexal serve`): sandboxes over REST, their events over SSE, the
 * takeover routes mounted from runner/takeover, metrics and an OpenAPI document. docs/api.md is
 * its reference.
 */

// `grexal serve --pool` parses its flags with runner/pool's own parser (the CLI does not import it).
export { type PoolSpec, type PoolStatus, parsePoolFlag } from '../pool/index.ts';
export { type BuildApiOptions, buildApi } from './app.ts';
export { isLoopbackHost } from './auth.ts';
export type { JournalLimits } from './journal.ts';
export type {
  ApiEvent,
  CreatedSandbox,
  CredentialChanged,
  ErrorEnvelope,
  OpenTakeover,
  SandboxView,
  TruncatedNotice,
} from './protocol.ts';
export type { RegistryOptions } from './registry.ts';
export { type CreateSandboxBody, createSandboxBodySchema } from './schemas.ts';
export { type ApiServer, type ServeOptions, serve } from './serve.ts';
export type { SseOptions } from './sse.ts';
