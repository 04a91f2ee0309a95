/**
 * The CDP relay: what an agent reaches at GREXAL_CDP_URL. It listens on a Unix socket in the
 * sandbox's host directory (`/run/grexal/cdp.sock` inside, where the supervisor forwards
 * 127.0.0.1:9222 to it) and answers like Chromium's DevTools endpoint, HTTP and WebSocket, over
 * the one browser-level connection of its upstream (mux.ts multiplexes the clients).
 *
 * The runner holds the switch: `cut()` closes every agent connection (close code
 * CDP_CUT_CLOSE_CODE), detaches their sessions and refuses new ones until `resume()`; the runner's
 * own channel (`runnerConnection()`) is never cut and shares nothing with the agents'.
 */
import { randomUUID } from 'node:crypto';
import { chmod, chown } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { AGENT_GID, AGENT_UID } from '../../sandbox-agent/protocol.ts';
import { GrexalError } from '../errors.ts';
import { listening } from '../listen.ts';
import { type AgentPolicy, screenAgentMessage } from './agent-policy.ts';
import { type CdpConnection, type CdpUpstream, DEFAULT_MAX_CDP_MESSAGE_BYTES } from './cdp-connection.ts';
import { answerDevtoolsHttp, type BrowserVersion, hostOf, sendJson } from './devtools-http.ts';
import { CdpMux, CLOSE_POLICY, type ClientKind, type MuxClient, type MuxSink } from './mux.ts';
import { SpareTabs } from './spare-tab.ts';

/** The close code of every agent connection that `cut()` ends (the reason says why). */
export const CDP_CUT_CLOSE_CODE = 4010;
/** A client that reads this far behind the browser is disconnected rather than buffered for. */
const MAX_BUFFERED_BYTES = 256 * 1024 * 1024;
const UPSTREAM_OPEN_TIMEOUT_MS = 30_000;

export interface CdpRelayOptions {
  upstream: CdpUpstream;
  logger: Logger;
  /** A message from an agent larger than this ends its connection (WebSocket 1009). Default 64 MiB. */
  maxMessageBytes?: number;
  /** Where agents' downloads go on the browser's machine (agent-policy.ts). Default: downloads denied. */
  downloadsDir?: string;
}

export class CdpRelay {
  private readonly agents = new Set<MuxClient>();
  private readonly runners = new Set<MuxClient>();
  private readonly sockets = new Set<Socket>();
  private readonly wss: WebSocketServer;
  private cutReason?: string;
  private closing?: Promise<void>;
  /** The id in `/devtools/browser/<id>`; a pipe has no endpoint, so the relay names its own. */
  readonly browserId = randomUUID();
  /** The runner's spare tab, hidden from agents (spare-tab.ts); none until `spare.enable()`. */
  readonly spare: SpareTabs;

  private constructor(
    private readonly mux: CdpMux,
    private readonly version: BrowserVersion,
    private readonly server: Server,
    private readonly logger: Logger,
    maxMessageBytes: number,
    private readonly policy: AgentPolicy,
  ) {
    this.spare = new SpareTabs(mux, logger);
    this.wss = new WebSocketServer({ noServer: true, maxPayload: maxMessageBytes, perMessageDeflate: false });
    server.on('request', (request, response) => void this.onRequest(request, response));
    server.on('upgrade', (request, socket: Socket, head) => this.onUpgrade(request, socket, head));
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('clientError', (_error, socket: Socket) => socket.destroy());
  }

  /**
   * Opens the upstream's browser connection and listens on `socketPath` (made connectable by the
   * agent user only). Rejects, with nothing left open, when either fails.
   */
  static async start(socketPath: string, options: CdpRelayOptions): Promise<CdpRelay> {
    const logger = options.logger.child({ component: 'cdp-relay' });
    const connection = await options.upstream.open({ timeoutMs: UPSTREAM_OPEN_TIMEOUT_MS });
    const mux = new CdpMux(connection, logger);
    const server = createServer();
    try {
      await mux.start();
      const version = await mux.rootCall('Browser.getVersion');
      const relay = new CdpRelay(
        mux,
        version as unknown as BrowserVersion,
        server,
        logger,
        options.maxMessageBytes ?? DEFAULT_MAX_CDP_MESSAGE_BYTES,
        { ...(options.downloadsDir ? { downloadsDir: options.downloadsDir } : {}) },
      );
      await listening(server, (done) => server.listen(socketPath, done));
      // Connecting needs write permission on the socket: the agent user (the forwarder) only.
      if (process.getuid?.() === 0) await chown(socketPath, AGENT_UID, AGENT_GID);
      await chmod(socketPath, 0o600);
      return relay;
    } catch (error) {
      connection.close();
      server.close();
      throw error;
    }
  }

  /** Settles once the browser connection is gone (the browser exited, its window was closed). */
  get browserGone(): Promise<void> {
    return new Promise((resolve) => this.mux.onClose(resolve));
  }

  /** True while agents are cut off. */
  get isCut(): boolean {
    return this.cutReason !== undefined;
  }

  /**
   * Ends every agent connection (WebSocket close CDP_CUT_CLOSE_CODE, `reason` in the close frame),
   * detaches all they attached, and refuses new ones (HTTP 503 E_BROWSER_CUT) until `resume()`.
   * Nothing the browser sends afterwards for their sessions reaches anyone.
   */
  cut(reason: string): void {
    this.cutReason = reason;
    for (const client of [...this.agents]) client.end(CDP_CUT_CLOSE_CODE, truncateReason(`cut: ${reason}`));
    this.logger.info({ reason }, 'agent CDP access cut');
  }

  /** Lets agents back in; a spare tab taken during the cut is made again, in the background. */
  resume(): void {
    if (this.cutReason === undefined) return;
    this.cutReason = undefined;
    this.logger.info('agent CDP access resumed');
    this.spare.replenish();
  }

  /**
   * A fresh channel for the runner itself, browser-level (its own browser session): never cut,
   * none of its events reach an agent, none of theirs reach it. Close it when done.
   */
  runnerConnection(): CdpConnection {
    const messageListeners: Array<(message: string) => void> = [];
    const closeListeners: Array<(why: Error | undefined) => void> = [];
    let closed = false;
    // Declared first: attach() ends the client at once (calling close below) when the browser is gone.
    let client: MuxClient | undefined;
    const sink: MuxSink = {
      send: (message) => {
        for (const listener of messageListeners) listener(message);
      },
      close: (code, reason) => {
        closed = true;
        if (client) this.runners.delete(client);
        const why = code === 1000 ? undefined : new Error(`the runner's CDP channel closed: ${reason}`);
        for (const listener of closeListeners.splice(0)) listener(why);
      },
    };
    const attached = this.mux.attach({ type: 'browser' }, sink);
    client = attached;
    if (!attached.closed) this.runners.add(attached);
    return {
      send: (message) => attached.receive(message),
      onMessage: (listener) => messageListeners.push(listener),
      onClose: (listener) => (closed ? listener(undefined) : closeListeners.push(listener)),
      close: () => attached.end(1000, 'closed'),
      get closed() {
        return closed;
      },
    };
  }

  /** Ends every connection, the runner's too, and the browser connection; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const client of [...this.agents, ...this.runners]) client.end(1001, 'the relay is closing');
      this.mux.close();
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const socket of this.sockets) socket.destroy();
      this.wss.close();
      await closed;
    })();
    return this.closing;
  }

  private refusal(): GrexalError | undefined {
    if (this.closing || this.mux.closed)
      return new GrexalError('E_BROWSER_UNAVAILABLE', 'The browser has closed. Start a new run.');
    if (this.cutReason !== undefined)
      return new GrexalError(
        'E_BROWSER_CUT',
        `The browser is with the user (${this.cutReason}); DevTools access comes back when they are done. Reconnect then.`,
      );
    return undefined;
  }

  private async onRequest(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const refused = this.refusal();
    if (refused) return sendJson(response, 503, { error: refused.toJSON() });
    const host = hostOf(request);
    if (!host)
      return sendJson(response, 403, {
        error: { code: 'E_BAD_REQUEST', message: 'Host must be an IP address or localhost.' },
      });
    try {
      const context = { mux: this.mux, version: this.version, browserId: this.browserId };
      if (!(await answerDevtoolsHttp(context, request, response, host)))
        sendJson(response, 404, {
          error: { code: 'E_ROUTE_NOT_FOUND', message: 'No such DevTools endpoint.' },
        });
    } catch (error) {
      this.logger.warn({ err: error, path: request.url?.split('?')[0] }, 'DevTools HTTP request failed');
      if (!response.headersSent)
        sendJson(response, 500, {
          error: { code: 'E_BROWSER_UNAVAILABLE', message: 'The browser did not answer.' },
        });
      else response.destroy();
    }
  }

  private onUpgrade(request: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const refused = this.refusal();
    if (refused) return void refuseUpgrade(socket, 503, JSON.stringify({ error: refused.toJSON() }));
    if (!hostOf(request)) return void refuseUpgrade(socket, 403, 'Host must be an IP address or localhost.');
    const kind = this.kindOf(request.url ?? '');
    if (!kind) return void refuseUpgrade(socket, 404, 'No such target.');
    this.wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws, kind));
  }

  private kindOf(url: string): ClientKind | undefined {
    const path = url.split('?')[0] ?? '';
    if (path === `/devtools/browser/${this.browserId}`) return { type: 'browser' };
    const page = /^\/devtools\/page\/([A-Za-z0-9._-]{1,128})$/.exec(path)?.[1];
    return page !== undefined && this.mux.targets.get(page) ? { type: 'page', targetId: page } : undefined;
  }

  private accept(ws: WebSocket, kind: ClientKind): void {
    ws.on('error', (error) => this.logger.debug({ err: error }, 'agent CDP socket error'));
    let client: MuxClient | undefined;
    const sink: MuxSink = {
      send: (message) => {
        if (ws.bufferedAmount > MAX_BUFFERED_BYTES)
          return void client?.end(CLOSE_POLICY, 'reading too slowly');
        ws.send(message);
      },
      close: (code, reason) => {
        if (client) this.agents.delete(client);
        ws.close(code, reason);
        // A peer that never answers the close frame loses its socket anyway.
        setTimeout(() => ws.terminate(), 2_000).unref();
      },
    };
    const attached = this.mux.attach(kind, sink, (message) =>
      screenAgentMessage(message, this.policy, this.mux.hidden),
    );
    client = attached;
    if (attached.closed) return;
    // A cut may have come while the handshake ran.
    if (this.cutReason !== undefined)
      return void attached.end(CDP_CUT_CLOSE_CODE, truncateReason(`cut: ${this.cutReason}`));
    this.agents.add(attached);
    ws.on('message', (data, isBinary) => {
      const text = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary && !isUtf8(text)) return void attached.end(1007, 'malformed CDP message');
      attached.receive(text.toString('utf8'));
    });
    ws.on('close', () => attached.end(1000, 'closed'));
  }
}

function isUtf8(buffer: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(buffer);
    return true;
  } catch {
    return false;
  }
}

/** A close frame's reason is at most 123 bytes. */
function truncateReason(reason: string): string {
  let out = reason;
  while (Buffer.byteLength(out) > 123) out = out.slice(0, -1);
  return out;
}

function refuseUpgrade(socket: Socket, status: number, body: string): void {
  const text = status === 503 ? 'Service Unavailable' : status === 403 ? 'Forbidden' : 'Not Found';
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
