/**
 * What the lifecycle needs from credential injection and from takeovers. runner/inject and
 * runner/takeover implement these without knowing each other; the runner wires them per sandbox.
 */
import type { Transform } from 'node:stream';
import type { RequestTakeoverParams } from '../../sandbox-agent/protocol.ts';

export interface SandboxCredentials {
  /** Environment variables for the agent process only. */
  env: Record<string, string>;
  /** The file channel as a tar of `<connection_id>/<name>` entries. */
  filesTar?: Buffer;
  mask(text: string): string;
  /** Masks a text stream, including values split across chunks. */
  createMaskingStream(): Transform;
  /** Answers ctx.connect(); throws an error carrying a protocol code. */
  connect(connectionId: string, signal?: AbortSignal): Promise<unknown>;
  connectionLabel(connectionId: string): string | undefined;
  /** Drops every credential from memory. */
  dispose(): void;
}

export interface TakeoverRequest extends RequestTakeoverParams {
  sandboxId: string;
  label?: string;
  /** Where the sandbox's VNC server (Xtigervnc) listens, on the host. */
  vncSocketPath: string;
  /** Where the desktop helper watches the browser for `until`, on the host. */
  browserSocketPath: string;
  signal: AbortSignal;
}

export interface SandboxTakeovers {
  /** Resolves when the user presses Done; rejects with a protocol-coded error otherwise. */
  request(request: TakeoverRequest): Promise<void>;
  /** Ends whatever takeover the sandbox has open (it is going away). */
  cancelAllFor(sandboxId: string): void;
}
