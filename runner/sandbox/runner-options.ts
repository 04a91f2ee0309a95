/** What a Runner is started with, and what a sandbox is created from (runner.ts). */
import type { Logger } from 'pino';
import type { CredentialProvider } from '../inject/index.ts';
import type { DangerousDnsOverride, NetworkManager } from '../network/index.ts';
import type { ContainerRuntime } from '../runtime/index.ts';
import type { SandboxBrowser } from './browser-wiring.ts';

export interface RunnerOptions {
  /** The container runtime; Docker found through DOCKER_HOST or /var/run/docker.sock by default. */
  runtime?: ContainerRuntime;
  /** Where per-sandbox directories live. Default: `GREXAL_STATE_DIR`, else /run/grexal-runner (root). */
  stateDir?: string;
  /** Default: pino at `GREXAL_LOG_LEVEL` (warn), to stderr. */
  logger?: Logger;
  /** Refreshes OAuth tokens near expiry. Default: none (an expired token answers `broken`). */
  credentialProvider?: CredentialProvider;
  /** Refresh an OAuth token that expires within this many ms. Default 60 000. */
  refreshWindowMs?: number;
  /** Origin of the server that serves takeover pages; set later by whoever serves them. */
  takeoverBaseUrl?: string;
  /**
   * Wires each sandbox's network. Default: the host's (veth, nftables, proxy) when the runtime is
   * Docker; none for other runtimes such as tests' fakes, whose sandboxes then get no link at all.
   */
  network?: NetworkManager;
  /**
   * Tests only: `.test` names answered with the given address and dialled at `dialHost`, so a test
   * reaches its own listeners by name. Refused for any other name; `grexal serve` refuses it
   * unless explicitly enabled.
   */
  dangerouslyOverrideDns?: DangerousDnsOverride;
  /** Pool entries starting at once across every pool. Default 2. */
  poolConcurrency?: number;
  /** How often a pool looks at its image id and its entries' age. Default 5000. */
  poolCheckIntervalMs?: number;
  /** How long a pool's refill waits for the next claim of a burst. Default 250; 0: at once. */
  poolRefillHoldMs?: number;
  /** The same for a desktop pool. Default DESKTOP_REFILL_HOLD_MS. */
  poolDesktopRefillHoldMs?: number;
  /** A pool entry's CPU weight while it starts (SandboxDeps.warmingCpuShares). Default ENTRY_CPU_SHARES. */
  poolEntryCpuShares?: number;
  /**
   * Whether the default Docker runtime waits for the engine's ping before start() resolves.
   * Default true; false for one-shot runs (`grexal run`): the ping runs beside the first calls
   * and a missing engine fails the create with the same E_ENGINE_UNREACHABLE.
   */
  pingFirst?: boolean;
  /**
   * Leftovers of dead runners are removed once this settles. Default: at start. `grexal run`
   * passes its sandbox's start: the reaper's engine calls and spawns then stay off its path.
   */
  reapAfter?: Promise<unknown>;
  signal?: AbortSignal;
}

export interface CreateSandboxInput {
  /** `{ connections: [...], network?: policy }` as in grexal.json. */
  manifest?: unknown;
  /** The orchestrator's network policy; it narrows the manifest's. Default `public`. */
  network?: unknown;
  /** The user's credentials, keyed by connection id. */
  credentials?: unknown;
  /** Overrides every connection's `reconnectTimeoutMs` (how long a broken one's connect waits). */
  reconnectTimeoutMs?: unknown;
  /** Serve from this pool only (still only on an exact match); cold otherwise. */
  pool?: unknown;
  /** In-process callers only (grexal dev): the browser behind the sandbox's CDP relay. Never pooled. */
  browser?: SandboxBrowser;
  /** Everything of `sandboxOptionsSchema`: image, command, env, desktop, limits, runtime. */
  [option: string]: unknown;
}
