/**
 * Many CDP clients over the one browser-level connection a pipe gives.
 *
 * The trick is Chromium's own: each client gets a browser session of its own
 * (`Target.attachToBrowserTarget`), or a page session (`Target.attachToTarget`, flatten) for a
 * `/devtools/page/<id>` client, and its messages are sent with that sessionId. Chromium then keeps
 * every piece of a client's state apart (discovered targets, auto-attach, browser-level Fetch,
 * the sessions it attaches), and detaching that one session undoes all of it at once: that is how
 * a cut leaves nothing of the agent behind. The mux itself only
 *  - rewrites ids (each client numbers its own; the upstream sees one counter),
 *  - adds the client's session to what it sends and strips it from what it gets back,
 *  - routes every session-scoped message to the one client that owns the session (the sessions
 *    it was attached to, learned from `Target.attachedToTarget` delivered to it and from
 *    attach replies), and refuses a sessionId the client does not own,
 *  - keeps the root session for itself: the target list (`/json/list`) and `/json/new`.
 */
import type { Logger } from 'pino';
import type { CdpConnection } from './cdp-connection.ts';
import {
  CLOSE_BROWSER_GONE,
  type ClientKind,
  type ClientMessage,
  MuxClient,
  type MuxSink,
  type ScreenMessage,
  type UpstreamMessage,
} from './mux-client.ts';
import { TargetRegistry } from './targets.ts';

const ROOT_CALL_TIMEOUT_MS = 15_000;

type Pending =
  | { client: MuxClient; clientId: number; method: string }
  | { resolve: (result: unknown) => void; reject: (error: Error) => void };

export class CdpMux {
  readonly targets = new TargetRegistry();
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly owners = new Map<string, MuxClient>();
  private readonly clients = new Set<MuxClient>();
  private readonly closeListeners: Array<() => void> = [];

  constructor(
    private readonly upstream: CdpConnection,
    private readonly logger: Logger,
  ) {
    upstream.onMessage((message) => this.fromUpstream(message));
    upstream.onClose((why) => this.upstreamClosed(why));
  }

  get closed(): boolean {
    return this.upstream.closed;
  }

  /** Starts tracking the browser's targets on the root session. */
  async start(): Promise<void> {
    await this.rootCall('Target.setDiscoverTargets', { discover: true });
  }

  /** One call on the root session, the relay's own. */
  rootCall(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.upstream.closed) return Promise.reject(new Error('the browser connection is closed'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`the browser did not answer ${method} within ${ROOT_CALL_TIMEOUT_MS} ms`));
      }, ROOT_CALL_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve((result ?? {}) as Record<string, unknown>);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.upstream.send(JSON.stringify({ id, method, params }));
    });
  }

  /** A new client; its session is attached in the background, its messages queued until then. */
  attach(kind: ClientKind, sink: MuxSink, screen?: ScreenMessage): MuxClient {
    const client = new MuxClient(this, kind, sink, screen);
    if (this.upstream.closed) {
      client.end(CLOSE_BROWSER_GONE, 'the browser is gone');
      return client;
    }
    this.clients.add(client);
    client.start();
    return client;
  }

  onClose(listener: () => void): void {
    if (this.upstream.closed) listener();
    else this.closeListeners.push(listener);
  }

  close(): void {
    this.upstream.close();
  }

  // --- used by MuxClient ---------------------------------------------------------------------

  /** @internal */
  sendFor(client: MuxClient, message: ClientMessage, sessionId: string): void {
    const id = this.nextId++;
    this.pending.set(id, { client, clientId: message.id, method: message.method });
    const { params } = message;
    this.upstream.send(JSON.stringify({ id, method: message.method, params: params ?? {}, sessionId }));
  }

  /** @internal */
  register(sessionId: string, client: MuxClient): void {
    const owner = this.owners.get(sessionId);
    if (owner && owner !== client) return; // Never hand one client's session to another.
    this.owners.set(sessionId, client);
    client.sessions.add(sessionId);
  }

  /** @internal */
  unregister(sessionId: string, client: MuxClient): void {
    if (this.owners.get(sessionId) !== client) return;
    this.owners.delete(sessionId);
    client.sessions.delete(sessionId);
  }

  /** @internal */
  forget(client: MuxClient): void {
    this.clients.delete(client);
    for (const sessionId of client.sessions) this.owners.delete(sessionId);
    client.sessions.clear();
    if (this.pendingCount(client) > 0)
      for (const [id, pending] of this.pending)
        if ('client' in pending && pending.client === client) this.pending.delete(id);
  }

  /** @internal */
  pendingCount(client: MuxClient): number {
    return client.inFlight;
  }

  /** @internal Fire and forget on the root session (a detach of a session nobody wants). */
  rootNotify(method: string, params: Record<string, unknown>): void {
    this.rootCall(method, params).catch((error: unknown) =>
      this.logger.debug({ err: error, method }, 'root call failed'),
    );
  }

  // --- from the browser ----------------------------------------------------------------------

  private fromUpstream(text: string): void {
    let message: UpstreamMessage;
    try {
      message = JSON.parse(text) as UpstreamMessage;
    } catch {
      this.logger.warn('the browser sent a message that is not JSON; dropped');
      return;
    }
    if (typeof message !== 'object' || message === null) return;
    if (typeof message.id === 'number') {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      if ('resolve' in pending) {
        if (message.error !== undefined)
          pending.reject(new Error(`the browser refused: ${JSON.stringify(message.error)}`));
        else pending.resolve(message.result);
      } else pending.client.deliverReply(pending.clientId, pending.method, message);
      return;
    }
    if (typeof message.method !== 'string') return;
    if (message.sessionId === undefined) {
      this.rootEvent(message.method, message.params);
      return;
    }
    // A session nobody owns any more (its client went, or was cut): its events go nowhere.
    const owner = typeof message.sessionId === 'string' ? this.owners.get(message.sessionId) : undefined;
    owner?.deliverEvent(message);
  }

  private rootEvent(method: string, params: Record<string, unknown> | undefined): void {
    if (this.targets.apply(method, params)) return;
    // The browser ended a client's own session (its page closed, or crashed): like Chromium's
    // /devtools/page/<id> socket, that client's connection ends with it.
    if (method === 'Target.detachedFromTarget' && typeof params?.['sessionId'] === 'string') {
      const owner = this.owners.get(params['sessionId']);
      if (owner?.implicitSession === params['sessionId']) owner.end(1000, 'the target closed');
    }
  }

  private upstreamClosed(why: Error | undefined): void {
    if (why) this.logger.warn({ err: why }, 'the browser connection closed');
    for (const [, pending] of this.pending)
      if ('reject' in pending) pending.reject(new Error('the browser connection closed'));
    this.pending.clear();
    for (const client of [...this.clients]) client.end(CLOSE_BROWSER_GONE, 'the browser is gone');
    for (const listener of this.closeListeners.splice(0)) listener();
  }
}

export {
  CLOSE_BROWSER_GONE,
  CLOSE_MALFORMED,
  CLOSE_POLICY,
  type ClientKind,
  type ClientMessage,
  MuxClient,
  type MuxSink,
  parseClientMessage,
  type ScreenMessage,
} from './mux-client.ts';
