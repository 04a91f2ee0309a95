import type { Until } from '../../sandbox-agent/until.ts';
import type { UntilBrowser } from './until-watch.ts';

/** The shapes the takeover module shares with its callers: requests, snapshots and events. */

export type TakeoverState = 'requested' | 'active' | 'completed' | 'cancelled' | 'expired';
export type TakeoverEndState = Extract<TakeoverState, 'completed' | 'cancelled' | 'expired'>;

/**
 * Who ended a cancelled takeover: the user's Cancel button, the caller's signal, a destroyed
 * sandbox, a stopping runner, or a clean room the runner could not make (docs/browser.md).
 */
export type CancelledBy = 'user' | 'caller' | 'sandbox' | 'runner' | 'clean_room';

/** Who completed a takeover: the user's Done, or its `until` condition holding in the sandbox's browser. */
export type CompletedBy = 'user' | 'condition';

export interface TakeoverRequest {
  sandboxId: string;
  /** The `browser_login` connection the user is asked to log in to, when the agent named one. */
  connectionId?: string;
  /** Shown on the page: the connection's label from the manifest. */
  label?: string;
  /** Shown on the page: why the agent needs the user (from `ctx.request_takeover`). */
  reason: string;
  /** Between TAKEOVER_MIN_TIMEOUT_MS and TAKEOVER_MAX_TIMEOUT_MS (10 s – 30 min). */
  timeoutMs: number;
  /** Host path of the sandbox's VNC socket: `<hostRunDir>/vnc.sock`. Never leaves the runner. */
  vncSocketPath: string;
  /** Aborting cancels the takeover (`takeover.cancelled`, by `caller`). */
  signal?: AbortSignal;
  /** Completes the takeover by itself once it holds in the sandbox's browser (validated by the caller). */
  until?: Until;
  /** The runner's own CDP connection to the sandbox's browser, where `until` is watched: needed with it. */
  browser?: UntilBrowser;
  /**
   * Settles once the sandbox's side is ready for the user's input (the clean room: docs/browser.md,
   * the agent frozen included): until then the stream holds what the controlling viewer types,
   * so the link can go out while the room is made.
   */
  ready?: Promise<void>;
  /**
   * Settles once the sandbox's screen may be shown (the fresh page in place, before the freeze
   * may have finished): the stream connects to the VNC socket only then. Default: `ready`.
   */
  shown?: Promise<void>;
  /** Called when a viewer's first framebuffer update has gone out to it (the user sees the screen). */
  onStreaming?: () => void;
}

/** A snapshot of one takeover, safe to log and to return from the API: no token, no socket path. */
export interface TakeoverInfo {
  id: string;
  sandboxId: string;
  connectionId?: string;
  label?: string;
  reason: string;
  state: TakeoverState;
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601. */
  expiresAt: string;
  /** WebSocket viewers connected right now. */
  viewers: number;
}

interface EventBase {
  takeoverId: string;
  sandboxId: string;
  connectionId?: string;
}

/**
 * Events, in the shape of the API's SSE stream. `url` carries the token: it is meant for the user,
 * so send it to them, and never log it.
 */
export type TakeoverEvent =
  | (EventBase & {
      type: 'takeover.requested';
      url: string;
      /** ISO 8601. */
      expiresAt: string;
      reason: string;
      label?: string;
    })
  | (EventBase & { type: 'takeover.completed'; by: CompletedBy })
  | (EventBase & { type: 'takeover.cancelled'; by: CancelledBy })
  | (EventBase & { type: 'takeover.expired' });

/** WebSocket close codes the page understands: the takeover ended, do not reconnect. */
export const CLOSE_CODES = {
  completed: 4001,
  /** Completed by the `until` condition: the page says "Signed in — handing back". */
  completedByCondition: 4005,
  /** Cancelled because the sandbox is being destroyed: the page says the sandbox is gone. */
  sandboxGone: 4006,
  cancelled: 4002,
  expired: 4003,
  /** The same viewer reconnected on another socket; this one is stale. */
  replaced: 4004,
  /** The viewer sent a malformed or oversized RFB message. */
  protocolViolation: 1008,
  /** The desktop's VNC socket closed or could not be reached. */
  desktopGone: 1011,
} as const;

/** A connected viewer, as the broker sees it: it can be told to go away. */
export interface Viewer {
  /** Random per page load; a reconnect with the same key takes back control. */
  key?: string;
  close(code: number, reason: string): void;
  /**
   * Gives up the input this viewer holds (not yet written to the desktop), whole messages in the
   * order they came, and holds none after: called just before a newer connection with the same
   * key replaces it, so that what the user typed reaches the desktop through the new one.
   */
  surrender?(): Buffer[];
}

/** A viewer's place in a takeover. `controls` can change while connected (it never turns on by itself). */
export interface ViewerLease {
  readonly controls: boolean;
  /** Whether this viewer replaced a connection with the same key. */
  readonly replaced: boolean;
  /** The replaced connection's held input (see Viewer.surrender), for this viewer to write first. */
  readonly carried: readonly Buffer[];
  detach(): void;
}
