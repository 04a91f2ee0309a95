/**
 * The agent's JavaScript client for the Grexal ctx socket, shipped as /opt/grexal/ctx.mjs:
 *
 *   import { ctx } from '/opt/grexal/ctx.mjs';
 *   const { fields } = await ctx.connect('openai');
 *
 * Node 20 (the image's), no dependencies, no validator: it loads in a few milliseconds. One socket is opened
 * on first use and shared by every call; it does not keep the process alive while idle. The
 * protocol is documented in docs/ctx-protocol.md.
 */
import { get } from 'node:http';
import { createConnection, type Socket } from 'node:net';
import type { ConnectResult } from '../protocol.ts';
import { CTX_SOCKET_PATH } from '../wire.ts';

export type { ConnectResult };

/**
 * A failed ctx call. `code` is the protocol's (`not_declared`, `not_connected`, `broken`, `revoked`,
 * `takeover_cancelled`, `takeover_expired`, …) or one of the client's own: `unavailable` (the
 * socket cannot be reached: not inside a Grexal sandbox?), `timeout`, `aborted`.
 */
export class CtxError extends Error {
  override readonly name = 'CtxError';
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

export interface CallOptions {
  signal?: AbortSignal;
  /** Give up after this many ms (code `timeout`). Default: no limit of the client's own. */
  timeoutMs?: number;
}

export interface ConnectOptions extends CallOptions {
  /**
   * Default true: a broken connection waits (up to its reconnect timeout, 10 minutes unless the
   * manifest says otherwise) until the user re-authorises it. false: answer `broken` at once.
   */
  wait?: boolean;
}

export interface RequestTakeoverOptions {
  /** The browser_login connection the user should log into, for the prompt's label. */
  connectionId?: string;
  /** Shown to the user: what to do in the browser. */
  reason: string;
  /** How long the user gets (10 000 – 1 800 000 ms). Default 600 000. */
  timeoutMs?: number;
  /**
   * Completes the takeover by itself once the sandbox's browser shows a page whose URL matches the
   * `url` glob (`*` any run, `?` one character; scheme and host required) or holds a cookie named
   * `cookie`; the user's Done still works. See docs/takeover.md.
   */
  until?: { url?: string; cookie?: string };
}

interface Pending {
  settle(error: Error | undefined, result?: unknown): void;
}

class CtxClient {
  private socket: Socket | undefined;
  private buffered = '';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  call(method: string, params: unknown, options: CallOptions = {}): Promise<unknown> {
    const { signal, timeoutMs } = options;
    if (signal?.aborted) return Promise.reject(new CtxError('aborted', `ctx.${method} was aborted.`));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const onAbort = (): void =>
        this.take(id)?.settle(new CtxError('aborted', `ctx.${method} was aborted.`));
      this.pending.set(id, {
        settle: (error, result) => {
          if (timer) clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(result);
        },
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            this.take(id)?.settle(
              new CtxError('timeout', `ctx.${method} had no answer within ${timeoutMs} ms.`),
            ),
          timeoutMs,
        );
      }
      const socket = this.open();
      socket.ref();
      socket.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  private open(): Socket {
    if (this.socket) return this.socket;
    const path = process.env['GREXAL_CTX_SOCKET'] || CTX_SOCKET_PATH;
    const socket = createConnection(path);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.receive(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) =>
      this.lose(socket, path, error.code ?? error.message),
    );
    socket.on('close', () => this.lose(socket, path, 'the runner closed the connection'));
    this.socket = socket;
    return socket;
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    for (let end = this.buffered.indexOf('\n'); end >= 0; end = this.buffered.indexOf('\n')) {
      const line = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 1);
      let message: { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
      try {
        message = JSON.parse(line);
      } catch {
        continue;
      }
      const call = typeof message.id === 'number' ? this.take(message.id) : undefined;
      if (!call) continue;
      if (message.error) call.settle(new CtxError(String(message.error.code), String(message.error.message)));
      else call.settle(undefined, message.result);
    }
  }

  /** Removes a pending call; with none left, the socket stops holding the process open. */
  private take(id: number): Pending | undefined {
    const call = this.pending.get(id);
    this.pending.delete(id);
    if (this.pending.size === 0) this.socket?.unref();
    return call;
  }

  /** The socket is gone: fail what waits on it; the next call opens a new one. */
  private lose(socket: Socket, path: string, why: string): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    this.buffered = '';
    socket.destroy();
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) {
      call.settle(
        new CtxError(
          'unavailable',
          `The Grexal ctx socket ${path} is unavailable (${why}). Is this running inside a Grexal sandbox?`,
        ),
      );
    }
  }
}

const client = new CtxClient();

export interface WaitForBrowserOptions {
  signal?: AbortSignal;
  /** Give up after this many ms (code `timeout`). Default 30 000. */
  timeoutMs?: number;
}

/** What GREXAL_CDP_URL/json/version answers, as Chromium's own endpoint does. */
export interface BrowserVersion {
  Browser: string;
  webSocketDebuggerUrl: string;
  [field: string]: unknown;
}

const BROWSER_POLL_MS = 100;

/** One GET of /json/version: the answer once the relay serves the browser, undefined before. */
function browserVersion(base: string): Promise<BrowserVersion | undefined> {
  return new Promise((resolve) => {
    const req = get(`${base.replace(/\/+$/, '')}/json/version`, { timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        try {
          const version = JSON.parse(body) as BrowserVersion;
          resolve(res.statusCode === 200 && version.webSocketDebuggerUrl ? version : undefined);
        } catch {
          resolve(undefined);
        }
      });
      res.on('error', () => resolve(undefined));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(undefined));
  });
}

/**
 * Waits until the sandbox's browser answers at GREXAL_CDP_URL again. A takeover cuts the agent's
 * CDP connections and refuses new ones until it ends (docs/browser.md): after requestTakeover()
 * returns, call this, then connect again (e.g. chromium.connectOverCDP(process.env.GREXAL_CDP_URL)).
 */
async function waitForBrowser(options: WaitForBrowserOptions = {}): Promise<BrowserVersion> {
  const base = process.env['GREXAL_CDP_URL'];
  if (!base) throw new CtxError('unavailable', 'GREXAL_CDP_URL is not set: this sandbox has no browser.');
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (options.signal?.aborted) throw new CtxError('aborted', 'waitForBrowser was aborted.');
    const version = await browserVersion(base);
    if (version) return version;
    if (Date.now() >= deadline)
      throw new CtxError(
        'timeout',
        `The browser at ${base} did not answer within ${options.timeoutMs ?? 30_000} ms.`,
      );
    await new Promise((resolve) => setTimeout(resolve, BROWSER_POLL_MS));
  }
}

export const ctx = {
  /** A connection's credential, as the manifest declares it. */
  connect(connectionId: string, options: ConnectOptions = {}): Promise<ConnectResult> {
    const { wait, ...call } = options;
    const params = wait === false ? { connectionId, wait: false } : { connectionId };
    return client.call('connect', params, call) as Promise<ConnectResult>;
  },
  /** Asks the user to take over the sandbox's browser (e.g. to log in); resolves when they press Done. */
  requestTakeover(request: RequestTakeoverOptions, options?: CallOptions): Promise<{ outcome: 'completed' }> {
    return client.call('request_takeover', request, options) as Promise<{ outcome: 'completed' }>;
  },
  /** After a takeover: resolves once the browser answers at GREXAL_CDP_URL again (bounded). */
  waitForBrowser,
};

export default ctx;
