/**
 * One takeover's record as the broker keeps it, and what is derived from it alone: the checks of a
 * request and of a token, the view a valid token opens, its public info and event fields. The
 * registry of takeovers (open, ended, by sandbox) and their lifecycle stay in broker.ts.
 */
import { isAbsolute } from 'node:path';
import { TAKEOVER_MAX_TIMEOUT_MS, TAKEOVER_MIN_TIMEOUT_MS } from '../../sandbox-agent/protocol.ts';
import { untilProblem } from '../../sandbox-agent/until.ts';
import { GrexalError } from '../errors.ts';
import { TakeoverError } from './takeover-error.ts';
import { newTakeoverId, tokenMatches } from './token.ts';
import type { CancelledBy, TakeoverInfo, TakeoverRequest, Viewer, ViewerLease } from './types.ts';
import type { ViewerSet } from './viewers.ts';

/** What a valid token opens: the page's data, the socket to bridge to, and a seat among the viewers. */
export interface AuthorizedTakeover {
  readonly info: TakeoverInfo;
  /** Host path of the VNC socket; for the bridge only, never sent to a browser. */
  readonly vncSocketPath: string;
  /** Settles once the sandbox may have the user's input (TakeoverRequest.ready); the bridge holds input until then. */
  readonly ready: Promise<void>;
  /** Settles once the sandbox's screen may be shown (TakeoverRequest.shown); the stream connects only then. */
  readonly shown: Promise<void>;
  /** A viewer's first framebuffer update went out (TakeoverRequest.onStreaming). */
  streaming(): void;
  /** Takes a seat; throws E_TAKEOVER_ENDED if the takeover ended since it was authorized. */
  attachViewer(viewer: Viewer): ViewerLease;
  /** For the page: whether the viewer with `key` controls, and how many watch. */
  viewerStatus(key: string | undefined): { controls: boolean; viewers: number };
}

export interface Open {
  id: string;
  token: string;
  request: TakeoverRequest;
  state: 'requested' | 'active';
  createdAt: number;
  expiresAt: number;
  viewers: ViewerSet;
  timer: NodeJS.Timeout;
  unlisten: () => void;
  /** Aborted when the takeover ends: stops the `until` watch and closes its prepared VNC connection. */
  unwatch: AbortController;
  resolve: (value: 'completed') => void;
  reject: (error: TakeoverError) => void;
}

/** A takeover that just opened, for what prepares it; `ended` is aborted when it ends, however. */
export interface OpenedTakeover {
  readonly id: string;
  /** Host path of the VNC socket; never sent to a browser. */
  readonly vncSocketPath: string;
  readonly ended: AbortSignal;
  /** Settles once the sandbox's screen may be shown (TakeoverRequest.shown, else ready). */
  readonly shown: Promise<void>;
}

/** The part of the runner's id issuer the broker uses; `origin` is `'earlier'` for a stopped runner's id. */
export interface TakeoverIds {
  mint(kind: 'tk'): string;
  origin(id: string): string;
}

export const RANDOM_TAKEOVER_IDS: TakeoverIds = { mint: newTakeoverId, origin: () => 'unknown' };

/** Refuses a request the broker must not open (one per sandbox, bounds, a server to link to). */
export function checkRequest(
  req: TakeoverRequest,
  existing: Open | undefined,
  baseUrl: string | undefined,
): void {
  if (existing) {
    throw new TakeoverError(
      'takeover_in_progress',
      `A takeover is already open for this sandbox (${existing.id}); wait for it to end before requesting another.`,
    );
  }
  const { timeoutMs } = req;
  if (
    !Number.isInteger(timeoutMs) ||
    timeoutMs < TAKEOVER_MIN_TIMEOUT_MS ||
    timeoutMs > TAKEOVER_MAX_TIMEOUT_MS
  ) {
    throw new TakeoverError(
      'invalid_request',
      `timeoutMs ${timeoutMs} is out of range; use ${TAKEOVER_MIN_TIMEOUT_MS}–${TAKEOVER_MAX_TIMEOUT_MS} ms.`,
    );
  }
  if (!req.reason || req.reason.length > 500) {
    throw new TakeoverError('invalid_request', 'reason must be 1–500 characters: tell the user what to do.');
  }
  const problem = req.until && untilProblem(req.until);
  if (problem) throw new TakeoverError('invalid_request', `${problem.path}: ${problem.message}.`);
  if (req.until && !req.browser) {
    throw new TakeoverError('internal', "until needs the runner's connection to the browser.");
  }
  if (!isAbsolute(req.vncSocketPath)) {
    throw new TakeoverError('internal', `vncSocketPath must be absolute, got ${req.vncSocketPath}.`);
  }
  if (req.signal?.aborted) throw new TakeoverError('takeover_cancelled', 'The request was aborted.');
  if (baseUrl === undefined) {
    throw new TakeoverError(
      'takeover_unavailable',
      'No takeover server is running on this runner, so no link can be given; start one (startTakeoverServer).',
    );
  }
}

/** 401 without a token, 403 with a wrong one (compared in constant time). */
export function checkToken(t: Open, token: string | undefined | null): void {
  if (!token) {
    throw new GrexalError('E_TAKEOVER_TOKEN_MISSING', 'The takeover link has no token. Open the full link.');
  }
  if (!tokenMatches(t.token, token)) {
    throw new GrexalError(
      'E_TAKEOVER_TOKEN_INVALID',
      'The takeover token is wrong. Open the exact link you were sent.',
    );
  }
}

/** What a valid token opens on `t`; `attach` seats a viewer (the broker checks it is still open). */
export function authorizedView(t: Open, attach: (viewer: Viewer) => ViewerLease): AuthorizedTakeover {
  return {
    info: takeoverInfo(t),
    vncSocketPath: t.request.vncSocketPath,
    ready: t.request.ready ?? Promise.resolve(),
    shown: t.request.shown ?? t.request.ready ?? Promise.resolve(),
    streaming: () => t.request.onStreaming?.(),
    attachViewer: attach,
    viewerStatus: (key) => ({ controls: t.viewers.controlsKey(key), viewers: t.viewers.size }),
  };
}

export function takeoverInfo(t: Open): TakeoverInfo {
  const { sandboxId, connectionId, label, reason } = t.request;
  return {
    id: t.id,
    sandboxId,
    ...(connectionId === undefined ? {} : { connectionId }),
    ...(label === undefined ? {} : { label }),
    reason,
    state: t.state,
    createdAt: new Date(t.createdAt).toISOString(),
    expiresAt: new Date(t.expiresAt).toISOString(),
    viewers: t.viewers.size,
  };
}

export function takeoverEventBase(t: Open): { takeoverId: string; sandboxId: string; connectionId?: string } {
  const { sandboxId, connectionId } = t.request;
  return { takeoverId: t.id, sandboxId, ...(connectionId === undefined ? {} : { connectionId }) };
}

export function cancelMessage(by: CancelledBy): string {
  switch (by) {
    case 'user':
      return 'The user cancelled the takeover.';
    case 'caller':
      return 'The takeover request was withdrawn.';
    case 'sandbox':
      return 'The sandbox is being destroyed.';
    case 'runner':
      return 'The runner is shutting down.';
    case 'clean_room':
      return 'The runner could not prepare the browser for the login; ask again.';
  }
}
