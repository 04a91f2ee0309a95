/**
 * Serves `ctx.sock` for one sandbox: the NDJSON protocol of sandbox-agent/protocol.ts.
 * The server only frames, dispatches and answers; what each method means is the lifecycle's
 * business (it passes the handlers), so this file knows nothing of credentials or takeovers.
 */
import { chmod, chown, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import {
  AGENT_GID,
  AGENT_UID,
  type CtxErrorCode,
  ERROR_CODES,
  LineSplitter,
  type Method,
  type Request,
  requestSchema,
} from '../../sandbox-agent/protocol.ts';
import { findUnencodable, formatPath } from '../validation.ts';

export interface CtxCall {
  /** Aborted when the calling client disconnects or the server closes. */
  signal: AbortSignal;
}

export type CtxHandler = (params: unknown, call: CtxCall) => Promise<unknown>;
export type CtxHandlers = Partial<Record<Method, CtxHandler>>;

/** An error the agent is meant to see: a protocol code and a message free of secrets. */
export interface CodedError {
  code: CtxErrorCode;
  message: string;
}

function isCodedError(error: unknown): error is CodedError {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code);
}

export interface CtxServerOptions {
  /** Called with failures that are not the agent's business (answered as `internal`). */
  onInternalError?: (error: unknown, method: string) => void;
  /** Owner of the socket file; the agent user by default. Tests on the host pass their own. */
  owner?: { uid: number; gid: number };
}

export class CtxServer implements AsyncDisposable {
  private readonly server: Server;
  private readonly sockets = new Set<Socket>();
  private readonly closed = new AbortController();

  private constructor(
    readonly socketPath: string,
    private readonly handlers: CtxHandlers,
    private readonly options: CtxServerOptions,
  ) {
    this.server = createServer((socket) => this.accept(socket));
  }

  static async listen(
    socketPath: string,
    handlers: CtxHandlers,
    options: CtxServerOptions = {},
  ): Promise<CtxServer> {
    const ctxServer = new CtxServer(socketPath, handlers, options);
    await new Promise<void>((resolve, reject) => {
      ctxServer.server.once('error', reject);
      ctxServer.server.listen(socketPath, () => {
        ctxServer.server.off('error', reject);
        resolve();
      });
    });
    // Connecting needs write permission on the socket; only the agent user gets it.
    const owner = options.owner ?? { uid: AGENT_UID, gid: AGENT_GID };
    await chown(socketPath, owner.uid, owner.gid);
    await chmod(socketPath, 0o600);
    return ctxServer;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    const gone = new AbortController();
    const signal = AbortSignal.any([gone.signal, this.closed.signal]);
    const splitter = new LineSplitter();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      let lines: string[];
      try {
        lines = splitter.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const line of lines) void this.dispatch(socket, line, signal);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(socket);
      gone.abort();
    });
  }

  private async dispatch(socket: Socket, line: string, signal: AbortSignal): Promise<void> {
    let request: Request;
    try {
      request = requestSchema.parse(JSON.parse(line));
    } catch {
      this.reply(socket, {
        id: null,
        error: { code: 'invalid_request', message: 'Not a valid ctx request line.' },
      });
      return;
    }
    // JSON's \u escapes can carry a lone surrogate, which no file, log or takeover page can hold.
    const unencodable = findUnencodable(request, 1)[0];
    if (unencodable) {
      const message = `${formatPath(unencodable) || 'The request'} holds a lone UTF-16 surrogate; send valid Unicode.`;
      this.reply(socket, { id: request.id, error: { code: 'invalid_request', message } });
      return;
    }
    // Own properties only: `toString`, `constructor` and the like must not reach Object.prototype.
    const handler = Object.hasOwn(this.handlers, request.method)
      ? this.handlers[request.method as Method]
      : undefined;
    if (!handler) {
      const error = { code: 'unknown_method', message: `Unknown method '${request.method}'.` };
      this.reply(socket, { id: request.id, error });
      return;
    }
    try {
      const result = await handler(request.params, { signal });
      this.reply(socket, { id: request.id, result: result ?? {} });
    } catch (error) {
      if (isCodedError(error)) {
        this.reply(socket, { id: request.id, error: { code: error.code, message: error.message } });
      } else {
        this.options.onInternalError?.(error, request.method);
        this.reply(socket, {
          id: request.id,
          error: { code: 'internal', message: 'The runner failed to answer.' },
        });
      }
    }
  }

  private reply(socket: Socket, message: unknown): void {
    if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
  }

  async close(): Promise<void> {
    if (this.closed.signal.aborted) return;
    this.closed.abort();
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.socketPath, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
