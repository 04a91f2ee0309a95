/**
 * The zod-free half of the ctx protocol (see protocol.ts, which re-exports all of this): paths,
 * ids, error codes, methods and line framing. Code that runs inside the sandbox imports values
 * from here only, and types from protocol.ts, so that its bundle carries no validator.
 */

/**
 * Where the runner's socket appears inside the agent's container, and the desktop's sockets inside
 * the browser container: each container mounts its own host directory here (docs/browser.md).
 */
export const SANDBOX_RUN_DIR = '/run/grexal';
export const CTX_SOCKET_PATH = `${SANDBOX_RUN_DIR}/ctx.sock`;
/** The browser container's RFB socket (Xtigervnc), bridged by the runner to the takeover page. */
export const VNC_SOCKET_NAME = 'vnc.sock';
/**
 * `cdp.sock`, in two directories: in the agent's, the runner's CDP relay (runner/browser), where
 * the supervisor's forwarder sends GREXAL_CDP_URL; in the browser container's, Chromium's
 * --remote-debugging-pipe bridged to a socket (NUL-framed CDP), which only the runner reaches.
 */
export const CDP_SOCKET_NAME = 'cdp.sock';
/** The in-sandbox loopback port of GREXAL_CDP_URL (Chromium's usual DevTools port). */
export const CDP_RELAY_PORT = 9222;
/** Root of the file channel: files land at `${FILES_ROOT}/<connection_id>/<name>`. */
export const FILES_ROOT = '/tmp/grexal';
/** The agent user's uid and gid inside every image. */
export const AGENT_UID = 1000;
export const AGENT_GID = 1000;

/** A line longer than this is a protocol violation (bootstrap carries files: 8 MiB as base64, plus room). */
export const MAX_LINE_BYTES = 16 * 1024 * 1024;

export const CONNECTION_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/**
 * A file-channel name: a plain name, never a path. No `/`, no leading dot (so never `.` or `..`),
 * no control characters or spaces; at most 128 characters.
 */
export const FILE_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export const ERROR_CODES = [
  'not_declared',
  'not_connected',
  'broken',
  'revoked',
  'takeover_cancelled',
  'takeover_expired',
  'takeover_in_progress',
  'takeover_unavailable',
  'invalid_request',
  'unknown_method',
  'internal',
] as const;
export type CtxErrorCode = (typeof ERROR_CODES)[number];

export const TAKEOVER_MIN_TIMEOUT_MS = 10_000;
export const TAKEOVER_MAX_TIMEOUT_MS = 30 * 60_000;
export const TAKEOVER_DEFAULT_TIMEOUT_MS = 10 * 60_000;

export const METHODS = [
  'bootstrap',
  'started',
  'exited',
  'supervisor_resume',
  'connect',
  'request_takeover',
] as const;
export type Method = (typeof METHODS)[number];

/**
 * Calls the runner makes to the supervisor, on the supervisor's own connection (the one that made
 * `bootstrap`, or took it back with `supervisor_resume`): live changes to the file channel.
 */
export const SUPERVISOR_METHODS = ['files_replace', 'files_remove'] as const;
export type SupervisorMethod = (typeof SUPERVISOR_METHODS)[number];

/** Splits a byte stream into lines, refusing a line over `maxBytes`. */
export class LineSplitter {
  private buffered = '';
  constructor(private readonly maxBytes = MAX_LINE_BYTES) {}

  push(chunk: string): string[] {
    this.buffered += chunk;
    const lines = this.buffered.split('\n');
    this.buffered = lines.pop() ?? '';
    // Complete lines too: a long line whose newline came in the same chunk is just as oversized.
    if (this.buffered.length > this.maxBytes || lines.some((line) => line.length > this.maxBytes))
      throw new Error(`protocol line over ${this.maxBytes} bytes`);
    return lines.filter((line) => line.length > 0);
  }
}
