/**
 * A takeover's spare VNC connection, opened and taken through the RFB handshake (vnc-handshake.ts)
 * when the takeover is requested, before any user arrives: the first viewer's WebSocket is bridged
 * to it at once, and the bridge answers that viewer's handshake itself (bridge.ts), so neither
 * the connect nor the server's side of the handshake is on the path to the first frame.
 *
 * The spare is a plain shared client that has sent nothing past ClientInit, so for the server it
 * is exactly a fresh connection: no encodings set, no update requested, nothing encoded for it.
 * It keeps reading while idle, to notice the server closing it (Xtigervnc drops a client that did
 * not announce DesktopSize when the screen resizes) and to hold anything the server sends, which
 * the viewer then gets after ServerInit. Taken, it is replaced by a new one for the next viewer.
 * It belongs to one takeover: it is opened on that takeover's socket path and closed when that
 * takeover ends (its `ended` signal), and never handed to another.
 */
import type { Logger } from 'pino';
import { askAhead, holder, prepareVnc } from './vnc-handshake.ts';
import type { VncConnection } from './vnc-socket.ts';

// The handshake moved to vnc-handshake.ts; these stay importable from here, where they always were.
export { askAhead, type PrepareVncOptions, prepareVnc } from './vnc-handshake.ts';

export interface VncSpareOptions {
  /** Aborted when the takeover ends: the spare is closed and no other is opened. */
  ended: AbortSignal;
  /**
   * Settles once the sandbox's screen may be shown (the clean room's fresh page in place): from
   * then on each spare asks for the first frame ahead, as the page's noVNC will (first-requests.ts),
   * so it is encoded and on its way before the viewer asks. Absent: never (spares send nothing
   * past ClientInit).
   */
  shown?: Promise<void>;
  timeoutMs?: number;
  /** Wait before replacing a spare that closed or failed; doubles per failure, up to 5 s. Default 250. */
  retryMs?: number;
  /**
   * How long after a viewer's first frame went out (viewerStarted) the next spare may ask for its
   * own first frame ahead. Default 500 ms.
   */
  nextAheadDelayMs?: number;
  log?: Logger;
}

const MAX_FAILURES = 6;

/** One takeover's spare: `take` hands it to a viewer and starts preparing the next. */
export class VncSpare {
  private ready: VncConnection | undefined;
  private preparing = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  /** Whether spares ask for the first frame ahead: once shown, until a viewer refused one. */
  private ahead = false;
  /** A viewer refused a first frame asked ahead: no spare asks ahead any more. */
  private stopped = false;
  /**
   * Viewers that took a spare and whose first frame is not out yet (plus nextAheadDelayMs): the
   * next spare asks nothing ahead meanwhile. Its first frame would be encoded by the same server
   * process, relayed by the same runner and, here, on the same cores as the viewer's browser, in
   * the very moment the viewer waits for its own (the next spare is made when a viewer takes one;
   * at `shown` it was asked before the taken one, so the server encoded it first). It is for a
   * reconnect or a second viewer, which can have it half a second later.
   */
  private starting = 0;
  private readonly startTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly path: string,
    private readonly options: VncSpareOptions,
  ) {
    options.ended.addEventListener('abort', () => this.close(), { once: true });
    options.shown?.then(
      () => {
        if (options.ended.aborted || this.stopped) return;
        this.ahead = true;
        this.askIfDue();
      },
      () => {},
    );
    this.prepare();
  }

  /**
   * The prepared connection, if one is ready and open and fits the viewer: one with the first
   * frame asked for ahead only to a viewer that will ask for the same (`ahead`), a plain one to
   * any viewer. The viewer connects itself otherwise.
   */
  take(ahead = false): VncConnection | undefined {
    const fits = this.ready?.prepared && (ahead || this.ready.prepared.ahead === undefined);
    if (!fits) return undefined;
    const vnc = this.ready;
    this.ready = undefined;
    this.failures = 0;
    if (!vnc?.prepared || vnc.socket.destroyed) {
      this.prepare();
      return undefined;
    }
    // Before the next is prepared, so that it waits to ask ahead.
    this.starting++;
    this.prepare();
    // Paused from the next byte on, until the bridge has sent the viewer ServerInit.
    vnc.onData(holder(vnc, vnc.prepared, false));
    return vnc;
  }

  /**
   * A spare for a viewer whose first requests will be first-requests.ts's, even before the screen
   * may be shown: its bridge answers the handshake from ServerInit (no pixels in it) at once and
   * asks for the first frame ahead (askAhead) only once the screen may be shown. Undefined when
   * none is ready or this takeover does not ask ahead (no `shown`, or stopAhead).
   */
  takeForAhead(): VncConnection | undefined {
    if (this.stopped || !this.options.shown) return undefined;
    return this.take(true);
  }

  /**
   * A viewer sent other first requests than those asked for ahead (a page out of step with this
   * runner): spares ask for nothing ahead from now on, so its reconnects, and later viewers, get
   * the plain path.
   */
  stopAhead(): void {
    this.stopped = true;
    if (!this.ahead) return;
    this.ahead = false;
    if (this.ready?.prepared?.ahead === undefined) return;
    this.ready.socket.destroy();
    this.ready = undefined;
    this.prepare();
  }

  /**
   * A viewer that took a spare has had its first frame (or is gone without it): after
   * nextAheadDelayMs the next spare may ask ahead. Once per take.
   */
  viewerStarted(): void {
    const timer = setTimeout(() => {
      this.startTimers.delete(timer);
      this.starting = Math.max(0, this.starting - 1);
      this.askIfDue();
    }, this.options.nextAheadDelayMs ?? 500);
    timer.unref();
    this.startTimers.add(timer);
  }

  /** The waiting spare asks for the first frame ahead, if the screen may be shown and no viewer is starting. */
  private askIfDue(): void {
    if (!this.ahead || this.starting > 0 || this.options.ended.aborted) return;
    if (this.ready && !this.ready.socket.destroyed) askAhead(this.ready);
  }

  /** Whether a prepared connection is waiting (for tests and logs). */
  get isReady(): boolean {
    return this.ready !== undefined && !this.ready.socket.destroyed;
  }

  close(): void {
    clearTimeout(this.retry);
    for (const timer of this.startTimers) clearTimeout(timer);
    this.startTimers.clear();
    this.ready?.socket.destroy();
    this.ready = undefined;
  }

  private prepare(): void {
    if (this.preparing || this.ready || this.options.ended.aborted) return;
    this.preparing = true;
    prepareVnc(this.path, {
      signal: this.options.ended,
      ...(this.options.timeoutMs === undefined ? {} : { timeoutMs: this.options.timeoutMs }),
    }).then(
      (vnc) => {
        this.preparing = false;
        if (this.options.ended.aborted) return vnc.socket.destroy();
        this.ready = vnc;
        this.askIfDue();
        // A spare the server closes counts as a failure until a viewer takes one: a desktop that
        // keeps dropping idle clients (or an agent's server doing it on purpose) is left alone
        // after a few tries, and its viewers connect for themselves as before.
        vnc.socket.once('close', () => {
          if (this.ready !== vnc) return;
          this.ready = undefined;
          this.failed();
        });
      },
      (error: Error) => {
        this.preparing = false;
        if (this.options.ended.aborted) return;
        this.options.log?.debug({ err: error.message }, 'cannot prepare a VNC connection');
        this.failed();
      },
    );
  }

  /** Tries again later, waiting longer each time, and not at all after MAX_FAILURES in a row. */
  private failed(): void {
    this.failures++;
    if (this.options.ended.aborted || this.failures >= MAX_FAILURES) return;
    const delay = Math.min(5000, (this.options.retryMs ?? 250) * 2 ** (this.failures - 1));
    clearTimeout(this.retry);
    this.retry = setTimeout(() => this.prepare(), delay);
    this.retry.unref();
  }
}
