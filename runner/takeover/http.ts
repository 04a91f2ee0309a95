/**
 * The takeover routes, framework-agnostic: `createTakeoverHandlers` gives (req, res) and
 * (req, socket, head) handlers that node:http, the CLI's loopback server (`startTakeoverServer`)
 * and the fastify API can all mount.
 *
 *   GET|HEAD /takeover/:id?token=…             the page
 *   GET      /takeover/assets/:name            its bundled script and stylesheet
 *   WS       /v1/takeovers/:id/stream?token=…  the VNC stream (bridge.ts); &viewer=<key>,
 *                                              &handshake=pipelined from a viewer that speaks 3.8,
 *                                              &first=<tag> from one whose first requests are
 *                                              first-requests.ts's
 *   GET      /v1/takeovers/:id/viewer?token=…   this viewer's status (http-viewer.ts)
 *   POST     /v1/takeovers/:id/timing?token=…   the page's first-frame timing (http-timing.ts)
 *   POST     /v1/takeovers/:id/complete|cancel token in the query or a JSON body
 *
 * Unknown id → 404, ended → 410, no token → 401, wrong token → 403, all before any VNC byte.
 * The page routes are http-pages.ts, the stream's upgrade http-stream.ts; this file composes them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { GrexalError } from '../errors.ts';
import { listening } from '../listen.ts';
import type { TakeoverBroker } from './broker.ts';
import { createPageRoutes } from './http-pages.ts';
import { createStreamRoute } from './http-stream.ts';
import type { ViewerTiming } from './http-timing.ts';
import { sendError } from './http-util.ts';

export interface TakeoverHttpOptions {
  broker: TakeoverBroker;
  /** Origins allowed besides the request's own host, e.g. a proxy's public origin. Default none. */
  allowedOrigins?: string[];
  /** Where takeover.js and takeover.css are. Default: dist/takeover beside the runner's bundle. */
  assetsDir?: string;
  /** Largest WebSocket message from a viewer. Default 1 MiB + 64 KiB (one maximal clipboard paste). */
  maxPayloadBytes?: number;
  /** Largest clipboard paste from a viewer. Default 1 MiB. */
  maxCutTextBytes?: number;
  /** How long to wait for the sandbox's VNC server to greet. Default 5000. */
  vncConnectTimeoutMs?: number;
  /** WebSocket ping interval. Default 20000. */
  heartbeatMs?: number;
  /**
   * The work done ahead of the first frame: a spare VNC connection per takeover (prepared-vnc.ts)
   * and the page's inline boot script (page/boot.ts). Default true; false serves as before them,
   * for bench/takeover's A/B (and as a way out should a VNC server mishandle idle clients).
   */
  firstFrameAhead?: boolean;
  /**
   * With `firstFrameAhead`: once the screen may be shown, each spare also asks for the first frame
   * as the page's noVNC will (first-requests.ts), and a viewer that says it will ask the same
   * (`first=`) gets that frame with ServerInit. Default true; false keeps spares silent past
   * ClientInit (every viewer's own requests reach the server).
   */
  firstUpdateAhead?: boolean;
  /** Each viewer's first-frame timing, as its page reports it (once per viewer), e.g. for metrics. */
  onViewerTiming?: (timing: ViewerTiming) => void;
  log?: Logger;
}

export interface TakeoverHandlers {
  /** Answers and returns true when the path is a takeover route; returns false otherwise. */
  handleRequest(req: IncomingMessage, res: ServerResponse): boolean;
  /** Takes the upgrade and returns true for the stream route; returns false otherwise. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Whether a prepared VNC connection waits for this takeover's next viewer (for logs and tests). */
  isPrepared(takeoverId: string): boolean;
  /** Disconnects every viewer. */
  close(): void;
}

export function createTakeoverHandlers(options: TakeoverHttpOptions): TakeoverHandlers {
  const { log } = options;
  const logged = (req: IncomingMessage, url: URL, status: number): void => {
    // The query string holds the token: only the path is ever logged.
    log?.info({ method: req.method, path: url.pathname, status }, 'takeover request');
  };

  const handleRequest = createPageRoutes(options, logged);
  return { handleRequest, ...createStreamRoute(options, logged) };
}

export interface TakeoverServerOptions extends TakeoverHttpOptions {
  /** Default 127.0.0.1: the CLI serves takeovers on loopback only. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
}

export interface TakeoverServer extends AsyncDisposable {
  /** e.g. `http://127.0.0.1:38211`; the broker's base URL unless it had one. */
  readonly url: string;
  readonly port: number;
  /** Whether a prepared VNC connection waits for this takeover's next viewer. */
  isPrepared(takeoverId: string): boolean;
  close(): Promise<void>;
}

/** A node:http server with only the takeover routes, for `grexal run` and `grexal dev`. */
export async function startTakeoverServer(options: TakeoverServerOptions): Promise<TakeoverServer> {
  const handlers = createTakeoverHandlers(options);
  const server = createServer((req, res) => {
    if (!handlers.handleRequest(req, res)) {
      sendError(res, new GrexalError('E_ROUTE_NOT_FOUND', `No route ${(req.url ?? '/').split('?')[0]}.`));
    }
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (!handlers.handleUpgrade(req, socket, head))
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
  });
  const host = options.host ?? '127.0.0.1';
  await listening(server, (done) => server.listen(options.port ?? 0, host, done));
  const { port } = server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (!options.broker.hasBaseUrl()) options.broker.setBaseUrl(url);
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      handlers.close();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closing;
  };
  return { url, port, isPrepared: handlers.isPrepared, close, [Symbol.asyncDispose]: close };
}
