/**
 * The takeover's stream route (http.ts): `WS /v1/takeovers/:id/stream`, authorized, then bridged
 * (bridge.ts) to a prepared VNC connection (prepared-vnc.ts) or one of its own.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type WebSocket, WebSocketServer } from 'ws';
import { type GrexalError, toGrexalError } from '../errors.ts';
import { type Bridge, bridge } from './bridge.ts';
import type { AuthorizedTakeover } from './broker.ts';
import { FIRST_REQUESTS_TAG } from './first-requests.ts';
import { bytesOf } from './held-input.ts';
import type { TakeoverHandlers, TakeoverHttpOptions } from './http.ts';
import { checkOrigin, type LogRequest, refuseUpgrade } from './http-util.ts';
import { VncSpare } from './prepared-vnc.ts';
import { CLOSE_CODES, type TakeoverEndState, type ViewerLease } from './types.ts';
import { connectVnc, type VncConnection } from './vnc-socket.ts';

const ID = '([A-Za-z0-9_-]{1,64})';
const STREAM = new RegExp(`^/v1/takeovers/${ID}/stream$`);
const VIEWER_KEY = /^[A-Za-z0-9_-]{16,64}$/;

/** TakeoverHandlers' stream half: the upgrade, the spares behind it, and closing its viewers. */
export function createStreamRoute(
  options: TakeoverHttpOptions,
  logged: LogRequest,
): Pick<TakeoverHandlers, 'handleUpgrade' | 'isPrepared' | 'close'> {
  const { broker, log } = options;
  const allowedOrigins = options.allowedOrigins ?? [];
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
  return { handleUpgrade, isPrepared, close };
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
