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
  /** Answers ctx.connect(); throws an error carrying a protocol code. `wait: false`: never wait. */
  connect(connectionId: string, options?: { signal?: AbortSignal; wait?: boolean }): Promise<unknown>;
  connectionLabel(connectionId: string): string | undefined;
  /** A new credential for a running sandbox's connection; its files through `files`. */
  update(connectionId: string, credential: unknown, files: LiveFiles): Promise<{ restored: boolean }>;
  /** Removes a connection's credential and files; idempotent. */
  remove(connectionId: string, files: LiveFiles): Promise<void>;
  /** Reports how many connect calls wait for a new credential. */
  onWaiting(listener: (waiting: number) => void): () => void;
  /** Drops every credential from memory. */
  dispose(): void;
}

/** The sandbox's file channel while it runs, through its supervisor. */
export interface LiveFiles {
  replace(connectionId: string, filesTar: Buffer): Promise<void>;
  remove(connectionId: string): Promise<void>;
}

export interface TakeoverRequest extends RequestTakeoverParams {
  sandboxId: string;
  label?: string;
  /** Where the sandbox's VNC server (Xtigervnc) listens, on the host: the browser container's directory. */
  vncSocketPath: string;
  /** The runner's own CDP connection to the sandbox's browser, where `until` is watched. */
  browser: (method: string, params?: Record<string, unknown>) => Promise<unknown>;
  /** Settles once the clean room is made; the user's input waits for it (docs/browser.md). */
  ready?: Promise<void>;
  /** Settles once the clean room's fresh page is in place; the stream's pixels wait for it. */
  shown?: Promise<void>;
  /** Called when a viewer's first framebuffer update has gone out (the clean room then freezes the agent). */
  onStreaming?: () => void;
  signal: AbortSignal;
}

export interface SandboxTakeovers {
  /** Resolves when the user presses Done; rejects with a protocol-coded error otherwise. */
  request(request: TakeoverRequest): Promise<void>;
  /** Ends whatever takeover the sandbox has open: it is going away, or its clean room failed. */
  cancelAllFor(sandboxId: string, by?: 'sandbox' | 'clean_room'): void;
}
