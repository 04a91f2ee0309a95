/**
 * The HTTP API's wire shapes: what the server sends and the client reads. Types only (plus the
 * zod body schema in schemas.ts, whose type the client infers), so the client imports no server code.
 */
import type { ExitReason, SandboxState } from '../sandbox/index.ts';

export type { ExitReason, SandboxState };

/** Every error response: `{ error: { code, message, details? } }`. */
export interface ErrorEnvelope {
  error: { code: string; message: string; details?: unknown };
}

/** The takeover a sandbox waits on, as its `takeover.requested` event announced it. */
export interface OpenTakeover {
  id: string;
  /** The link for the user; it carries the takeover's token. */
  url: string;
  /** ISO 8601. */
  expiresAt: string;
  reason?: string;
  connectionId?: string;
  label?: string;
}

/** `GET /v1/sandboxes/:id`. */
export interface SandboxView {
  id: string;
  state: SandboxState;
  image: string;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601, once the sandbox has ended. */
  endedAt?: string;
  /** Set once the sandbox has ended: the agent's code, or -1 when it never ran. */
  exitCode: number | null;
  exitReason: ExitReason | null;
  /**
   * Once ended: the cgroup's record that a process of the sandbox (the agent or a child) was
   * killed for memory, whatever the exit code.
   */
  oomKilled: boolean | null;
  /** For `engine_lost`, `engine_stopped` and `killed`: what happened, the engine's endpoint and the fix. */
  exitMessage?: string;
  takeover: OpenTakeover | null;
  metadata: Record<string, string>;
  /** The sandbox's network policy as it stands (after PATCHes). */
  network: { mode: string; allow?: string[] };
  /** A pool entry served the run. */
  warm: boolean;
}

/** `POST /v1/sandboxes` → 201. */
export interface CreatedSandbox {
  id: string;
  state: SandboxState;
  /** A pool entry serves the run. */
  warm: boolean;
}

/** `PUT /v1/sandboxes/:id/credentials/:connectionId` → 200. */
export interface CredentialChanged {
  connectionId: string;
  /** `restored`: the connection was broken, and the calls that waited for it go on; `updated`: a rotation. */
  outcome: 'restored' | 'updated';
}

interface EventBase {
  /** Per sandbox, from 1, strictly increasing: the SSE `id:` and `Last-Event-ID`. */
  id: number;
  /** Epoch milliseconds. */
  at: number;
}

/** One Server-Sent Event of `GET /v1/sandboxes/:id/events`; its SSE `event:` is `type`. */
export type ApiEvent = EventBase &
  (
    | { type: 'state'; state: SandboxState }
    /** Once, before the sandbox runs: `warm` when a pool entry serves the run (docs/pools.md). */
    | { type: 'claimed'; warm: boolean }
    | { type: 'log'; stream: 'stdout' | 'stderr'; text: string }
    | { type: 'error'; code: string; message: string }
    | { type: 'connect'; connectionId: string; mode?: string; durationMs?: number }
    | {
        type: 'takeover.requested';
        takeoverId: string;
        url: string;
        expiresAt: string;
        reason?: string;
        connectionId?: string;
        label?: string;
      }
    | { type: 'takeover.completed'; takeoverId: string; connectionId?: string; by?: 'user' | 'condition' }
    | { type: 'takeover.expired'; takeoverId: string; connectionId?: string }
    | { type: 'takeover.cancelled'; takeoverId: string; connectionId?: string; by?: string }
    /** Always the last event; the stream ends after it. */
    | { type: 'exit'; exitCode: number; reason: ExitReason; oomKilled: boolean; message?: string }
    | { type: 'connection.broken'; connectionId: string; reason: string }
    | { type: 'connection.restored' | 'connection.updated'; connectionId: string }
    | { type: 'connection.revoked'; connectionId: string; required: boolean }
    | { type: `connection.${string}`; [field: string]: unknown }
  );

/**
 * Sent without an `id:` when a reconnect asked for events the bounded replay buffer no longer
 * holds: ids `from`..`to` are lost (the stream resumes at `to + 1`).
 */
export interface TruncatedNotice {
  type: 'truncated';
  from: number;
  to: number;
}
