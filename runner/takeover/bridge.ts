/**
 * One viewer's WebSocket ↔ its own connection to the sandbox's VNC socket.
 *
 * Server → viewer is the heavy direction (framebuffer updates): each chunk read from the socket
 * goes out as one binary message with no copy and no parsing; when the WebSocket's send buffer
 * passes `highWaterMarkBytes` the VNC socket is paused until the TCP socket drains. Viewer →
 * server goes through the RFB parser (rfb.ts), which forwards slices and drops input from a viewer
 * who does not control; when the VNC socket's write buffer is full, the WebSocket is paused.
 * Either side closing, failing or misbehaving closes both.
 *
 * On a prepared connection (prepared-vnc.ts: the runner already did the handshake with the
 * server) the bridge plays the server's part of the handshake itself: the viewer's version,
 * security choice and ClientInit are checked as always, answered at once from here, and the
 * server's saved ServerInit closes it; the relay starts after that.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocket } from 'ws';
import { firstRequests } from './first-requests.ts';
import { HeldInput } from './held-input.ts';
import { askAhead } from './prepared-vnc.ts';
import { type HandshakeStep, RfbClientParser, RfbProtocolError } from './rfb.ts';
import { CLOSE_CODES } from './types.ts';
import type { VncConnection } from './vnc-socket.ts';

export interface BridgeOptions {
  /** An open server-side WebSocket. */
  ws: WebSocket;
  /** The TCP socket under `ws` (the one given to `handleUpgrade`); its 'drain' resumes the VNC socket. */
  transport: Duplex;
  /** A connected VNC socket, greeting already read (connectVnc). */
  vnc: VncConnection;
  /** Read for every message: whether this viewer's input reaches the desktop now. */
  controls: () => boolean;
  /**
   * Settles once the sandbox may have the viewer's input (the clean room made, the agent frozen:
   * TakeoverRequest.ready). Until then a controlling viewer's input is held, in order, and written
   * when it resolves; if it rejects, nothing held is ever written (the takeover is being
   * cancelled). Absent: at once.
   */
  inputOpen?: Promise<void>;
  /**
   * Input a replaced connection held (ViewerLease.carried): held here ahead of anything this viewer
   * sends, and written, once `inputOpen` settles, only after this viewer's own handshake (it is
   * RFB messages, which must not land inside the handshake). Default none.
   */
  carried?: readonly Buffer[];
  /** Called once, when the first bytes the server sent after the viewer's first update request go out. */
  onFirstUpdate?: () => void;
  /** Largest clipboard paste accepted from the viewer. Default 1 MiB. */
  maxCutTextBytes?: number;
  /** WebSocket send buffer above which reading from VNC pauses. Default 8 MiB (two full 1280×800 frames). */
  highWaterMarkBytes?: number;
  /**
   * The viewer said it speaks RFB 3.8 with security None (the page's `handshake=pipelined`): on a
   * prepared connection the whole server side of the handshake goes out at once, so the viewer
   * needs no round trip before its first update request. Its own handshake is still checked, and
   * anything but 3.8 and None is a protocol violation.
   */
  pipelined?: boolean;
  /**
   * On a prepared connection, for a viewer whose first requests will be first-requests.ts's: the
   * first frame is asked for ahead on it once this settles (the screen may be shown). Until then
   * the viewer gets only the handshake (from the saved ServerInit, which holds no pixels), nothing
   * it sends is written to the server, and nothing the server sends reaches it; if it rejects, the
   * viewer is closed. A connection that asked ahead already (prepared-vnc.ts) needs none of this.
   */
  askAheadWhen?: Promise<void>;
  /**
   * Called when the viewer's first requests were not those a prepared connection sent ahead for
   * it (it is disconnected as for any protocol violation): the takeover stops asking ahead.
   */
  onAheadRefused?: () => void;
  /** Ping interval; a viewer that misses a whole interval is dropped. Default 20000; 0 turns it off. */
  heartbeatMs?: number;
  log?: Logger;
}

export interface BridgeEnd {
  code: number;
  reason: string;
}

export interface Bridge {
  /** Closes both sides; the WebSocket gets `code` and `reason`. */
  close(code: number, reason: string): void;
  /** Settles when both sides are closed, with what the viewer was told. */
  readonly closed: Promise<BridgeEnd>;
  /** The input held and not yet written, taken out (Viewer.surrender): this bridge never writes it. */
  surrender(): Buffer[];
}

const SEND_OPTIONS = { binary: true, compress: false } as const;
/** What a viewer may send (past its held input) before the screen may be shown: noVNC sends none. */
const MAX_GATED_BYTES = 1024 * 1024;

export function bridge(options: BridgeOptions): Bridge {
  const { ws, transport, vnc, controls, log } = options;
  const socket = vnc.socket;
  const highWaterMark = options.highWaterMarkBytes ?? 8 * 1024 * 1024;
  const local = vnc.prepared;
  // The first frame is asked for ahead (prepared-vnc.ts), already or once the screen may be shown:
  // it goes out as soon as it is there, and the viewer's own first requests must be those sent.
  const aheadWhen = local
    ? (options.askAheadWhen ?? (local.ahead ? Promise.resolve() : undefined))
    : undefined;
  const ahead = aheadWhen && local ? firstRequests(local.serverInit) : undefined;
  const parser = new RfbClientParser({
    maxCutTextBytes: options.maxCutTextBytes ?? 1024 * 1024,
    ...(local ? { onHandshake: (step: HandshakeStep) => answerHandshake(step) } : {}),
    ...(ahead ? { expectFirst: ahead } : {}),
  });
  // Until the first frame may be asked for, what the viewer sends waits here (bounded).
  let gated: Buffer[] | undefined = ahead ? [] : undefined;
  let gatedBytes = 0;
  let ended = false;
  let inputOpen = options.inputOpen === undefined;
  let inputRefused = false;
  const held = new HeldInput(parser, log, options.carried);
  let vncPaused = false;
  let wsPaused = false;
  let resolveClosed!: (end: BridgeEnd) => void;
  const closed = new Promise<BridgeEnd>((resolve) => {
    resolveClosed = resolve;
  });

  const end = (code: number, reason: string): void => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    held.drop(code === CLOSE_CODES.replaced ? 'viewer replaced' : `closed: ${reason}`);
    socket.destroy();
    if (ws.readyState === WebSocket.OPEN) ws.close(code, reason);
    else ws.terminate();
    log?.debug({ code, reason, dropped: parser.dropped }, 'viewer disconnected');
    resolveClosed({ code, reason });
  };

  let firstUpdate = options.onFirstUpdate;
  const updateOut = (): void => {
    if (!firstUpdate || !(ahead || parser.updateRequested)) return;
    const call = firstUpdate;
    firstUpdate = undefined;
    call();
  };
  const relay = (): void => {
    vnc.onData((chunk, release) => {
      ws.send(chunk, SEND_OPTIONS, release);
      updateOut();
      if (ws.bufferedAmount <= highWaterMark) return true;
      vncPaused = true;
      return false;
    });
  };
  /** The server's side of the handshake, for a prepared connection (RFC 6143 §7.1–7.3). */
  let minor = 8;
  const pipelined = local !== undefined && options.pipelined === true;
  const answerHandshake = (step: HandshakeStep): void => {
    if (pipelined) {
      if (step.step === 'version' && step.minor !== 8)
        throw new RfbProtocolError('a pipelined handshake must be RFB 3.8');
      return;
    }
    if (step.step === 'version') {
      minor = step.minor;
      // 3.3: the server names the security type; 3.7 and 3.8: it offers a list (here only None).
      ws.send(minor === 3 ? Buffer.from([0, 0, 0, 1]) : Buffer.from([1, 1]), SEND_OPTIONS);
    } else if (step.step === 'security') {
      // SecurityResult follows None only from 3.8 on.
      if (minor === 8) ws.send(Buffer.alloc(4), SEND_OPTIONS);
    } else {
      startRelay();
    }
  };
  /** ServerInit (after `before`, in one message), what the server sent since, and from then on the relay. */
  const startRelay = (before?: Buffer): void => {
    if (!local) return;
    ws.send(before ? Buffer.concat([before, local.serverInit]) : local.serverInit, SEND_OPTIONS);
    if (!aheadWhen) {
      flowFromServer();
      return;
    }
    aheadWhen.then(
      () => {
        if (ended) return;
        askAhead(vnc);
        const waiting = gated ?? [];
        gated = undefined;
        write(waiting);
        flowFromServer();
      },
      () => end(CLOSE_CODES.desktopGone, 'the screen could not be shown'),
    );
  };
  const flowFromServer = (): void => {
    if (!local || ended) return;
    const held = local.held.splice(0);
    for (const chunk of held) ws.send(chunk, SEND_OPTIONS);
    if (held.length) updateOut();
    relay();
    if (!vncPaused) socket.resume();
  };
  // A prepared connection's server bytes wait (paused) until the viewer has had ServerInit.
  if (!local) relay();
  transport.on('drain', () => {
    if (vncPaused && !ended) {
      vncPaused = false;
      socket.resume();
    }
  });
  socket.on('drain', () => {
    if (wsPaused && !ended) {
      wsPaused = false;
      ws.resume();
    }
  });
  socket.on('error', (error) => log?.warn({ err: error.message }, 'VNC socket failed'));
  socket.on('close', () => end(CLOSE_CODES.desktopGone, 'desktop connection closed'));

  const write = (parts: Buffer[]): void => {
    if (gated) {
      for (const part of parts) gatedBytes += part.length;
      gated.push(...parts);
      if (gatedBytes > MAX_GATED_BYTES) {
        log?.info({ messages: gated.length, bytes: gatedBytes, why: 'over a bound' }, 'dropped viewer input');
        end(CLOSE_CODES.protocolViolation, 'too much sent before the screen');
      }
      return;
    }
    let flowing = true;
    for (const part of parts) flowing = socket.write(part);
    if (!flowing && !wsPaused) {
      wsPaused = true;
      ws.pause();
    }
  };
  /** Writes what is held once the sandbox may have it (and carried input, after the handshake). */
  const release = (): void => {
    if (ended || !inputOpen) return;
    const parts = held.release();
    if (parts) write(parts);
  };
  options.inputOpen?.then(
    () => {
      inputOpen = true;
      release();
    },
    () => {
      inputRefused = true;
      held.drop('the takeover ended before the agent was frozen');
    },
  );

  ws.on('message', (data, isBinary) => {
    if (ended) return;
    if (!isBinary || !Buffer.isBuffer(data)) {
      end(CLOSE_CODES.protocolViolation, 'binary frames only');
      return;
    }
    let parts: Buffer[];
    try {
      parts = parser.feed(
        data,
        !controls() || inputRefused ? 'drop' : inputOpen && !held.carrying ? 'forward' : 'hold',
      );
    } catch (error) {
      if (!(error instanceof RfbProtocolError)) throw error;
      log?.warn({ problem: error.message }, 'viewer sent a bad RFB message; disconnecting it');
      if (ahead && !parser.aheadMatched) options.onAheadRefused?.();
      end(CLOSE_CODES.protocolViolation, 'protocol violation');
      return;
    }
    write(parts);
    held.note();
    if (held.carrying) release();
  });
  ws.on('error', (error) => log?.warn({ err: error.message }, 'viewer WebSocket failed'));
  ws.on('close', (code) => end(code, 'viewer left'));

  let alive = true;
  ws.on('pong', () => {
    alive = true;
  });
  const heartbeatMs = options.heartbeatMs ?? 20_000;
  const heartbeat = setInterval(
    () => {
      if (!alive) {
        end(CLOSE_CODES.desktopGone, 'viewer stopped answering');
        return;
      }
      alive = false;
      ws.ping();
    },
    heartbeatMs || 2 ** 30,
  );
  heartbeat.unref();
  if (!heartbeatMs) clearInterval(heartbeat);

  if (socket.destroyed) {
    end(CLOSE_CODES.desktopGone, 'desktop connection closed');
  } else if (pipelined) {
    // The greeting, then the rest in one message: security (one type, None), SecurityResult OK and
    // ServerInit (RFB 3.8). noVNC stops reading after the version until the next message arrives,
    // and runs everything in that one in a single task.
    ws.send(vnc.greeting.subarray(0, 12), SEND_OPTIONS);
    startRelay(Buffer.from([1, 1, 0, 0, 0, 0]));
  } else {
    ws.send(local ? vnc.greeting.subarray(0, 12) : vnc.greeting, SEND_OPTIONS);
    if (!local) socket.resume();
  }
  return { close: end, closed, surrender: () => held.surrender() };
}
