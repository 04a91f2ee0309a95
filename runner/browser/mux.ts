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
import { TargetRegistry } from './targets.ts';

/** Where a client's messages go: a WebSocket, or the runner's own CdpConnection. */
export interface MuxSink {
  send(message: string): void;
  close(code: number, reason: string): void;
}

export type ClientKind = { type: 'browser' } | { type: 'page'; targetId: string };

export interface ClientMessage {
  id: number;
  method: string;
  params?: Record<string, unknown>;
  sessionId?: string;
}

/** Requests a client may have in flight, and messages it may send before its session exists. */
const MAX_PENDING_PER_CLIENT = 10_000;
const MAX_QUEUED_BEFORE_ATTACH = 1_000;
const ROOT_CALL_TIMEOUT_MS = 15_000;
/** Chromium's own answer to an unknown sessionId. */
const SESSION_NOT_FOUND = { code: -32001, message: 'Session with given id not found.' };
const ATTACH_METHODS = new Set(['Target.attachToTarget', 'Target.attachToBrowserTarget']);

/** Close codes a client sees (RFC 6455 ones where they fit). */
export const CLOSE_MALFORMED = 1007;
export const CLOSE_POLICY = 1008;
export const CLOSE_BROWSER_GONE = 1011;

/** A client's message, rebuilt from the four fields CDP has; undefined when it is not one. */
export function parseClientMessage(text: string): ClientMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { id, method, params, sessionId } = value as Record<string, unknown>;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) return undefined;
  if (typeof method !== 'string' || method.length === 0 || method.length > 256) return undefined;
  if (params !== undefined && (typeof params !== 'object' || params === null || Array.isArray(params)))
    return undefined;
  if (sessionId !== undefined && (typeof sessionId !== 'string' || sessionId.length > 256)) return undefined;
  return {
    id,
    method,
    ...(params === undefined ? {} : { params: params as Record<string, unknown> }),
    ...(sessionId === undefined ? {} : { sessionId }),
  };
}

type Pending =
  | { client: MuxClient; clientId: number; method: string }
  | { resolve: (result: unknown) => void; reject: (error: Error) => void };

interface UpstreamMessage {
  id?: unknown;
  method?: unknown;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: unknown;
  sessionId?: unknown;
}

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
  attach(kind: ClientKind, sink: MuxSink): MuxClient {
    const client = new MuxClient(this, kind, sink);
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

export class MuxClient {
  /** Sessions this client owns: its own, and every one attached through it. */
  readonly sessions = new Set<string>();
  implicitSession?: string;
  inFlight = 0;
  private queue: ClientMessage[] = [];
  private ended = false;

  constructor(
    private readonly mux: CdpMux,
    private readonly kind: ClientKind,
    private readonly sink: MuxSink,
  ) {}

  get closed(): boolean {
    return this.ended;
  }

  /** @internal */
  start(): void {
    const attaching =
      this.kind.type === 'browser'
        ? this.mux.rootCall('Target.attachToBrowserTarget')
        : this.mux.rootCall('Target.attachToTarget', { targetId: this.kind.targetId, flatten: true });
    attaching.then(
      (result) => {
        const sessionId = result['sessionId'];
        if (typeof sessionId !== 'string')
          return void this.end(CLOSE_BROWSER_GONE, 'the browser gave no session');
        if (this.ended) return void this.mux.rootNotify('Target.detachFromTarget', { sessionId });
        this.implicitSession = sessionId;
        this.mux.register(sessionId, this);
        const queued = this.queue;
        this.queue = [];
        for (const message of queued) this.forward(message);
      },
      (error: Error) => this.end(CLOSE_BROWSER_GONE, `cannot attach: ${error.message}`.slice(0, 120)),
    );
  }

  /** One message from the client. A malformed one ends this client, and only it. */
  receive(text: string): void {
    if (this.ended) return;
    const message = parseClientMessage(text);
    if (!message) return void this.end(CLOSE_MALFORMED, 'malformed CDP message');
    if (this.inFlight + this.queue.length >= MAX_PENDING_PER_CLIENT)
      return void this.end(CLOSE_POLICY, 'too many CDP requests in flight');
    if (this.implicitSession === undefined) {
      if (this.queue.length >= MAX_QUEUED_BEFORE_ATTACH)
        return void this.end(CLOSE_POLICY, 'too many CDP requests');
      this.queue.push(message);
      return;
    }
    this.forward(message);
  }

  private forward(message: ClientMessage): void {
    const sessionId = message.sessionId ?? (this.implicitSession as string);
    const named = message.params?.['sessionId'];
    const foreign =
      typeof named === 'string' && message.method.startsWith('Target.') && !this.sessions.has(named);
    if (!this.sessions.has(sessionId) || foreign) {
      this.sink.send(
        JSON.stringify({
          id: message.id,
          error: SESSION_NOT_FOUND,
          ...(message.sessionId ? { sessionId: message.sessionId } : {}),
        }),
      );
      return;
    }
    this.inFlight++;
    this.mux.sendFor(this, message, sessionId);
  }

  /** @internal */
  deliverReply(clientId: number, method: string, message: UpstreamMessage): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.ended) return;
    const sessionId = message.result?.['sessionId'];
    if (ATTACH_METHODS.has(method) && typeof sessionId === 'string') this.mux.register(sessionId, this);
    const reply: Record<string, unknown> =
      message.error !== undefined
        ? { id: clientId, error: message.error }
        : { id: clientId, result: message.result ?? {} };
    if (typeof message.sessionId === 'string' && message.sessionId !== this.implicitSession)
      reply['sessionId'] = message.sessionId;
    this.sink.send(JSON.stringify(reply));
  }

  /** @internal */
  deliverEvent(message: UpstreamMessage): void {
    if (this.ended) return;
    const child = message.params?.['sessionId'];
    if (typeof child === 'string') {
      if (message.method === 'Target.attachedToTarget') this.mux.register(child, this);
      else if (message.method === 'Target.detachedFromTarget') this.mux.unregister(child, this);
    }
    const out: UpstreamMessage = { method: message.method, params: message.params ?? {} };
    if (message.sessionId !== this.implicitSession) out.sessionId = message.sessionId;
    this.sink.send(JSON.stringify(out));
  }

  /**
   * Ends this client: its session is detached (and with it everything it attached or enabled),
   * its late replies and events go nowhere, and its sink is closed with `code`.
   */
  end(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    const own = this.implicitSession;
    this.mux.forget(this);
    if (own !== undefined && !this.mux.closed)
      this.mux.rootNotify('Target.detachFromTarget', { sessionId: own });
    this.sink.close(code, reason);
  }
}
