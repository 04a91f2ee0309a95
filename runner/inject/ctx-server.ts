/**
 * Serves `ctx.sock` for one sandbox: the NDJSON protocol of sandbox-agent/protocol.ts.
 * The server only frames, dispatches and answers; what each method means is the lifecycle's
 * business (it passes the handlers), so this file knows nothing of credentials or takeovers.
 */
import { setMaxListeners } from 'node:events';
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
  type SupervisorMethod,
} from '../../sandbox-agent/protocol.ts';
import { GrexalError } from '../errors.ts';
import { listening } from '../listen.ts';
import { findUnencodable, formatPath } from '../validation.ts';
import { SupervisorLine } from './supervisor-line.ts';

export interface CtxCall {
  /** Aborted when the calling client disconnects or the server closes. */
  signal: AbortSignal;
  /** Makes the caller's connection the supervisor's: the runner's own calls go there (callSupervisor). */
  claimSupervisor(): void;
  /** Whether the caller's connection is the supervisor's. */
  isSupervisor(): boolean;
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

/**
 * Bounds on what an agent can make the runner hold, since the agent is the adversary here. Requests
 * are small (the large lines are the runner's answers: bootstrap carries files), so a request line
 * over MAX_REQUEST_LINE_BYTES closes its connection. Past MAX_CONNECTIONS, a new connection pushes
 * out the oldest idle one (no call in flight), or is refused when none is idle; a connection with
 * MAX_IN_FLIGHT calls unanswered, or whose answers the agent does not read, is not read from until
 * that clears. Held, the runner's memory for one sandbox stays within a few MiB whatever it sends.
 */
export const MAX_REQUEST_LINE_BYTES = 256 * 1024;
export const MAX_CONNECTIONS = 32;
export const MAX_IN_FLIGHT = 64;
/** Abort listeners one call may hold on its connection's signal; past that Node's warning is right. */
const LISTENERS_PER_CALL = 4;

interface Connection {
  socket: Socket;
  inFlight: number;
  /** Lines read but not dispatched yet, while the connection is held. */
  queued: string[];
}

export class CtxServer implements AsyncDisposable {
  private readonly server: Server;
  /** In order of arrival: the first idle one is the oldest. */
  private readonly sockets = new Map<Socket, Connection>();
  private readonly closed = new AbortController();
  private supervisor?: SupervisorLine;

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
    await listening(ctxServer.server, (done) => ctxServer.server.listen(socketPath, done));
    // Connecting needs write permission on the socket; only the agent user gets it.
    const owner = options.owner ?? { uid: AGENT_UID, gid: AGENT_GID };
    await chown(socketPath, owner.uid, owner.gid);
    await chmod(socketPath, 0o600);
    return ctxServer;
  }

  private accept(socket: Socket): void {
    if (this.sockets.size >= MAX_CONNECTIONS && !this.evictIdle()) {
      socket.destroy();
      return;
    }
    const connection: Connection = { socket, inFlight: 0, queued: [] };
    this.sockets.set(socket, connection);
    const gone = new AbortController();
    const signal = AbortSignal.any([gone.signal, this.closed.signal]);
    // Shared by the connection's calls in flight, each waiting on it once or twice (a refresh, a
    // new credential): an agent's 11 concurrent connects must not print Node's leak warning.
    setMaxListeners(LISTENERS_PER_CALL * MAX_IN_FLIGHT, signal);
    const splitter = new LineSplitter(MAX_REQUEST_LINE_BYTES);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        connection.queued.push(...splitter.push(chunk));
      } catch {
        socket.destroy();
        return;
      }
      this.pump(connection, signal);
    });
    socket.on('drain', () => this.pump(connection, signal));
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.sockets.delete(socket);
      if (this.supervisor?.socket === socket) {
        this.supervisor.close();
        this.supervisor = undefined;
      }
      connection.queued.length = 0;
      gone.abort();
    });
  }

  private evictIdle(): boolean {
    for (const connection of this.sockets.values()) {
      // The supervisor's connection is idle by design; the agent must not push it out.
      if (connection.socket === this.supervisor?.socket) continue;
      if (connection.inFlight === 0 && connection.queued.length === 0) {
        connection.socket.destroy();
        this.sockets.delete(connection.socket);
        return true;
      }
    }
    return false;
  }

  /** Dispatches queued lines while the connection has room; reads no more until the queue is empty. */
  private pump(connection: Connection, signal: AbortSignal): void {
    const { socket } = connection;
    while (connection.queued.length > 0 && connection.inFlight < MAX_IN_FLIGHT && !socket.writableNeedDrain) {
      const line = connection.queued.shift() as string;
      connection.inFlight++;
      void this.dispatch(socket, line, signal).finally(() => {
        connection.inFlight--;
        this.pump(connection, signal);
      });
    }
    if (socket.destroyed) return;
    if (connection.queued.length > 0) socket.pause();
    else socket.resume();
  }

  private async dispatch(socket: Socket, line: string, signal: AbortSignal): Promise<void> {
    let request: Request;
    try {
      const message: unknown = JSON.parse(line);
      if (this.supervisor?.socket === socket && this.supervisor.take(message)) return;
      request = requestSchema.parse(message);
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
      const claimSupervisor = (): void => this.claimSupervisor(socket);
      const isSupervisor = (): boolean => this.supervisor?.socket === socket;
      const result = await handler(request.params, { signal, claimSupervisor, isSupervisor });
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

  private claimSupervisor(socket: Socket): void {
    if (this.supervisor?.socket === socket || socket.destroyed) return;
    this.supervisor?.close();
    this.supervisor = new SupervisorLine(socket);
  }

  /** Whether a supervisor holds its connection, so that callSupervisor can reach it. */
  get supervisorConnected(): boolean {
    return this.supervisor !== undefined && !this.supervisor.socket.destroyed;
  }

  /** A call to the supervisor on its connection; E_CREDENTIAL_DELIVERY_FAILED when it cannot answer. */
  callSupervisor(
    method: SupervisorMethod,
    params: unknown,
    options?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<unknown> {
    if (!this.supervisor)
      return Promise.reject(
        new GrexalError(
          'E_CREDENTIAL_DELIVERY_FAILED',
          "The sandbox's supervisor does not hold its connection to the runner (an older agent image, or it is reconnecting); nothing was changed. Rebuild the image with `grexal images build`, or retry.",
        ),
      );
    return this.supervisor.call(method, params, options);
  }

  private reply(socket: Socket, message: unknown): void {
    if (!socket.destroyed) socket.write(`${JSON.stringify(message)}\n`);
  }

  async close(): Promise<void> {
    if (this.closed.signal.aborted) return;
    this.closed.abort();
    for (const socket of this.sockets.keys()) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    await rm(this.socketPath, { force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
