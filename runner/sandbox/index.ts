export type { LocalTakeoverRequest, SandboxBrowser } from './browser-wiring.ts';
export type { ExitReason, SandboxEvent, SandboxExit, SandboxState } from './events.ts';
export { EventBus, EXIT_REASONS, failedReason, SANDBOX_STATES } from './events.ts';
export { defaultStateDir } from './host-dir.ts';
export {
  DEFAULT_DESKTOP_LIMITS,
  DEFAULT_LIMITS,
  DEFAULT_TIMEOUT_MS,
  type LimitsInput,
  limitsSchema,
  type ResolvedSandboxOptions,
  resolveSandboxOptions,
  type SandboxOptionsInput,
  sandboxOptionsSchema,
} from './options.ts';
export type { SandboxCredentials, SandboxTakeovers, TakeoverRequest } from './ports.ts';
export { Runner } from './runner.ts';
export type { CreateSandboxInput, RunnerOptions } from './runner-options.ts';
export { Sandbox } from './sandbox.ts';
export { formatBytes, parseBytes, parseDurationMs } from './units.ts';
