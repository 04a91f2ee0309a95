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
 *   POST     /v1/takeovers/:id/complete|cancel token in the query or a JSON body
 *
 * Unknown id → 404, ended → 410, no token → 401, wrong token → 403, all before any VNC byte.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { GrexalError, toGrexalError } from '../errors.ts';
import { listening } from '../listen.ts';
import { AssetStore } from './assets.ts';
import { type Bridge, bridge } from './bridge.ts';
import type { AuthorizedTakeover, TakeoverBroker } from './broker.ts';
import { FIRST_REQUESTS_TAG } from './first-requests.ts';
import { bytesOf } from './held-input.ts';
import {
  BASE_HEADERS,
  checkOrigin,
  contentSecurityPolicy,
  readSmallBody,
  refuseUpgrade,
  sendError,
  sendJson,
  tokenFromBody,
} from './http-util.ts';
import { VIEWER_ROUTE, viewerStatus } from './http-viewer.ts';
import { BOOT_SCRIPT_HASH } from './page/boot.ts';
import { type AssetVersions, renderMessagePage, renderPage } from './page/render.ts';
import { VncSpare } from './prepared-vnc.ts';
import { CLOSE_CODES, type TakeoverEndState, type ViewerLease } from './types.ts';
import { connectVnc, type VncConnection } from './vnc-socket.ts';

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

const ID = '([A-Za-z0-9_-]{1,64})';
const PAGE = new RegExp(`^/takeover/${ID}$`);
const ASSET = /^\/takeover\/assets\/([A-Za-z0-9._-]{1,64})$/;
const ACTION = new RegExp(`^/v1/takeovers/${ID}/(complete|cancel)$`);
const STREAM = new RegExp(`^/v1/takeovers/${ID}/stream$`);
const VIEWER_KEY = /^[A-Za-z0-9_-]{16,64}$/;

export function createTakeoverHandlers(options: TakeoverHttpOptions): TakeoverHandlers {
  const { broker, log } = options;
  const allowedOrigins = options.allowedOrigins ?? [];
  const assets = new AssetStore(options.assetsDir);
  const maxCutTextBytes = options.maxCutTextBytes ?? 1024 * 1024;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayloadBytes ?? maxCutTextBytes + 64 * 1024,
    perMessageDeflate: false,
    clientTracking: false,
  });
  const bridges = new Set<Bridge>();
  // Each open takeover's prepared VNC connection (prepared-vnc.ts), keyed by takeover id; only
  // that takeover's viewers, authorized by its token, ever take from it.
  const spares = new Map<string, VncSpare>();
  const ahead = options.firstFrameAhead ?? true;
  const stopPreparing = broker.onOpened(({ id, vncSocketPath, ended, shown }) => {
    if (!ahead) return;
    spares.set(
      id,
      new VncSpare(vncSocketPath, {
        ended,
        ...(options.firstUpdateAhead === false ? {} : { shown }),
        timeoutMs: options.vncConnectTimeoutMs ?? 5000,
        ...(log ? { log: log.child({ takeoverId: id }) } : {}),
      }),
    );
    ended.addEventListener('abort', () => spares.delete(id), { once: true });
  });

  const logged = (req: IncomingMessage, url: URL, status: number): void => {
    // The query string holds the token: only the path is ever logged.
    log?.info({ method: req.method, path: url.pathname, status }, 'takeover request');
  };

  async function page(req: IncomingMessage, res: ServerResponse, url: URL, id: string): Promise<void> {
    const headers = {
      ...BASE_HEADERS,
      'Content-Security-Policy': contentSecurityPolicy(
        req.headers.host,
        ahead ? BOOT_SCRIPT_HASH : undefined,
      ),
    };
    let status = 200;
    let html: string;
    try {
      const { info } = broker.authorize(id, url.searchParams.get('token'));
      html = renderPage(
        { id: info.id, reason: info.reason, expiresAt: info.expiresAt, ...labelOf(info) },
        await assetVersions(),
        { boot: ahead },
      );
    } catch (error) {
      const e = toGrexalError(error);
      status = e.status;
      html = renderMessagePage(
        status === 410 ? 'This takeover has ended' : 'This link does not work',
        e.message,
      );
    }
    res.writeHead(status, { ...headers, 'Content-Type': 'text/html; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : html);
    logged(req, url, status);
  }

  /** The bundle's versions for the page's links; none (plain links) while it cannot be read. */
  async function assetVersions(): Promise<AssetVersions> {
    const versions: AssetVersions = {};
    for (const name of ['takeover.js', 'takeover.css'] as const) {
      const found = await assets.get(name)?.catch(() => undefined);
      if (found) versions[name] = found.version;
    }
    return versions;
  }

  async function asset(req: IncomingMessage, res: ServerResponse, url: URL, name: string): Promise<void> {
    const found = await assets.get(name);
    if (!found) return sendError(res, new GrexalError('E_ROUTE_NOT_FOUND', `No takeover asset ${name}.`));
    const headers = {
      ...BASE_HEADERS,
      // A link naming this build's version may be kept; any other (an old page, no version) revalidates.
      'Cache-Control':
        url.searchParams.get('v') === found.version ? 'private, max-age=31536000, immutable' : 'no-cache',
      ETag: found.etag,
      'Content-Type': found.contentType,
    };
    if (req.headers['if-none-match'] === found.etag) {
      res.writeHead(304, headers);
      res.end();
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': found.body.length });
      res.end(req.method === 'HEAD' ? undefined : found.body);
    }
    logged(req, url, res.statusCode);
  }

  async function action(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    id: string,
    verb: string,
  ): Promise<void> {
    checkOrigin(req, allowedOrigins);
    const token = url.searchParams.get('token') ?? tokenFromBody(await readSmallBody(req));
    const info = verb === 'complete' ? broker.complete(id, token) : broker.cancel(id, token);
    sendJson(res, 200, JSON.stringify({ takeover: info }));
    logged(req, url, 200);
  }

  /** The route's work for this request: undefined when the path is not ours, null for a wrong method. */
  function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> | null | undefined {
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    const asAsset = ASSET.exec(url.pathname);
    if (asAsset) return read ? asset(req, res, url, asAsset[1]!) : null;
    const asPage = PAGE.exec(url.pathname);
    if (asPage) return read ? page(req, res, url, asPage[1]!) : null;
    const asViewer = VIEWER_ROUTE.exec(url.pathname);
    if (asViewer) {
      if (!read) return null;
      return (async () => {
        viewerStatus(broker, res, url, asViewer[1]!);
        logged(req, url, 200);
      })();
    }
    const asAction = ACTION.exec(url.pathname);
    if (asAction) return method === 'POST' ? action(req, res, url, asAction[1]!, asAction[2]!) : null;
    return undefined;
  }

  function handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://takeover.invalid');
    const work = route(req, res, url);
    if (work === undefined) return false;
    if (work === null) {
      sendError(
        res,
        new GrexalError('E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}.`),
      );
      return true;
    }
    work.catch((error: unknown) => {
      const e = toGrexalError(error);
      if (e.status >= 500) log?.error({ err: e, path: url.pathname }, 'takeover request failed');
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
      logged(req, url, e.status);
    });
    return true;
  }

  function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    const url = new URL(req.url ?? '/', 'http://takeover.invalid');
    const match = STREAM.exec(url.pathname);
    if (!match) return false;
    socket.on('error', (error) => log?.debug({ err: error.message }, 'viewer socket failed during upgrade'));
    void upgrade(req, socket, head, url, match[1]!);
    return true;
  }

  async function upgrade(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    url: URL,
    id: string,
  ): Promise<void> {
    let vnc: VncConnection | undefined;
    try {
      checkOrigin(req, allowedOrigins);
      const auth = broker.authorize(id, url.searchParams.get('token'));
      // The page's noVNC says it will send the first requests a spare sends ahead (first-requests.ts).
      const sameFirst = url.searchParams.get('first') === FIRST_REQUESTS_TAG;
      const spare = spares.get(auth.info.id);
      // Such a page may have its handshake before the screen may be shown (ServerInit holds no
      // pixels): the bridge asks for the first frame, and lets anything else through, only then.
      const early =
        sameFirst && url.searchParams.get('handshake') === 'pipelined' ? spare?.takeForAhead() : undefined;
      let askAheadWhen: Promise<void> | undefined;
      if (early) {
        vnc = early;
        askAheadWhen = auth.shown;
      } else {
        // The clean room (docs/browser.md) is made while the link travels; no pixel before its fresh
        // page is in place, and no input before the rest (the agent frozen): the bridge holds it.
        // A spare connection has done only its handshake (no update asked for), so it shows nothing yet.
        await auth.shown;
        vnc = spare?.take(sameFirst);
        if (!vnc) {
          vnc = await connectVnc(auth.vncSocketPath, { timeoutMs: options.vncConnectTimeoutMs ?? 5000 });
        }
      }
      const connection = vnc;
      // Taken from the spare: the next one waits to ask ahead until this viewer's first frame is out.
      const started = vnc.prepared && spare ? once(() => spare.viewerStarted()) : () => {};
      socket.once('close', started);
      let upgraded = false;
      // If the handshake fails (ws answers 400 itself) or the viewer leaves first, drop the VNC side.
      socket.once('close', () => {
        if (!upgraded) connection.socket.destroy();
      });
      if (socket.destroyed) throw new Error('the viewer left while the desktop was being reached');
      wss.handleUpgrade(req, socket, head, (ws) => {
        upgraded = true;
        attach(ws, socket, connection, auth, url, askAheadWhen, started);
      });
      logged(req, url, 101);
    } catch (error) {
      vnc?.socket.destroy();
      const e: GrexalError = toGrexalError(error);
      if (e.code === 'E_DESKTOP_UNAVAILABLE')
        log?.warn({ takeoverId: id, problem: e.message }, 'desktop unreachable');
      if (!socket.destroyed) refuseUpgrade(socket, e);
      logged(req, url, e.status);
    }
  }

  function attach(
    ws: WebSocket,
    transport: Duplex,
    vnc: VncConnection,
    auth: AuthorizedTakeover,
    url: URL,
    askAheadWhen: Promise<void> | undefined,
    started: () => void,
  ): void {
    const key = url.searchParams.get('viewer') ?? undefined;
    let current: Bridge | undefined;
    let lease: ViewerLease;
    try {
      lease = auth.attachViewer({
        ...(key && VIEWER_KEY.test(key) ? { key } : {}),
        close: (code, reason) => current?.close(code, reason),
        surrender: () => current?.surrender() ?? [],
      });
    } catch (error) {
      vnc.socket.destroy();
      const state = (toGrexalError(error).details as { state?: TakeoverEndState } | undefined)?.state;
      ws.close(state ? CLOSE_CODES[state] : CLOSE_CODES.desktopGone, 'takeover ended');
      return;
    }
    const bridgeLog = log?.child({ takeoverId: auth.info.id, sandboxId: auth.info.sandboxId });
    if (lease.replaced) {
      // The user's page reconnected (same per-tab key): counts only, never the key or the input.
      bridgeLog?.info(
        { carriedMessages: lease.carried.length, carriedBytes: bytesOf(lease.carried) },
        'viewer replaced by a new connection with the same key',
      );
    }
    const b = bridge({
      ws,
      transport,
      vnc,
      controls: () => lease.controls,
      inputOpen: auth.ready,
      onFirstUpdate: () => {
        auth.streaming();
        started();
      },
      maxCutTextBytes,
      pipelined: url.searchParams.get('handshake') === 'pipelined',
      onAheadRefused: () => spares.get(auth.info.id)?.stopAhead(),
      ...(askAheadWhen ? { askAheadWhen } : {}),
      ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
      ...(lease.carried.length ? { carried: lease.carried } : {}),
      ...(bridgeLog ? { log: bridgeLog } : {}),
    });
    current = b;
    bridges.add(b);
    void b.closed.then(() => {
      lease.detach();
      bridges.delete(b);
    });
  }

  function close(): void {
    stopPreparing();
    for (const spare of spares.values()) spare.close();
    spares.clear();
    for (const b of [...bridges]) b.close(1001, 'runner shutting down');
  }

  const isPrepared = (takeoverId: string): boolean => spares.get(takeoverId)?.isReady ?? false;
  return { handleRequest, handleUpgrade, isPrepared, close };
}

function labelOf(info: { label?: string }): { label?: string } {
  return info.label === undefined ? {} : { label: info.label };
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

/** `fn` to be called at most once, however many paths call it. */
function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}
