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
 *  - keeps the root session for itself: the target list (`/json/list`) and `/json/new`,
 *  - hides the runner's spare tab from agents (hidden-targets.ts), and holds every session's
 *    messages while one is being made (`createHiddenTarget`): Chromium announces a new target
 *    before it answers with its id, so until then nothing could tell the spare's events apart.
 */
import type { Logger } from 'pino';
import type { CdpConnection } from './cdp-connection.ts';
import { HiddenTargets } from './hidden-targets.ts';
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
/**
 * Messages held while a hidden target is made: past this the hold ends early, and the target made
 * is closed instead of hidden (what passed unscreened may have named it).
 */
const MAX_HELD = 100_000;

/** A target made hidden: the page, its `tab` target when Chromium showed one, its context. */
export interface HiddenTarget {
  targetId: string;
  tabId?: string;
  browserContextId?: string;
}

type Pending =
  | { client: MuxClient; clientId: number; method: string }
  | { resolve: (result: unknown) => void; reject: (error: Error) => void };

export class CdpMux {
  readonly hidden = new HiddenTargets();
  readonly targets = new TargetRegistry(this.hidden);
  /** Session messages held while a hidden target is made (undefined: none is). */
  private held?: UpstreamMessage[];
  private settledWaiters: Array<() => void> = [];
  private holdOverflowed = false;
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

  /** Starts tracking the browser's targets on the root session, `tab` targets too (tabOf). */
  async start(): Promise<void> {
    await this.rootCall('Target.setDiscoverTargets', {
      discover: true,
      filter: [{ type: 'browser', exclude: true }, {}],
    });
  }

  /** One call on the root session, the relay's own. */
  rootCall(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.ownCall(method, params);
  }

  /**
   * `Target.createTarget` (params as given) for a target no agent may see: from the call until
   * its answer, every session's messages are held; then the new page and its tab are hidden and
   * what was held goes on, screened. Root events are not held (they keep the registry).
   */
  createHiddenTarget(params: Record<string, unknown>): Promise<HiddenTarget> {
    if (this.held) return Promise.reject(new Error('a hidden target is already being made'));
    const hold: UpstreamMessage[] = [];
    this.held = hold;
    this.holdOverflowed = false;
    let hidden: HiddenTarget | undefined;
    return this.ownCall('Target.createTarget', params, undefined, (result) => {
      const targetId = result?.['targetId'];
      if (typeof targetId === 'string' && this.holdOverflowed) {
        this.notify('Target.closeTarget', { targetId });
      } else if (typeof targetId === 'string') {
        const tabId = this.targets.tabOf(targetId);
        const context = this.targets.peek(targetId)?.browserContextId;
        hidden = {
          targetId,
          ...(tabId ? { tabId } : {}),
          ...(context ? { browserContextId: context } : {}),
        };
        this.hidden.targets.add(targetId);
        if (tabId) this.hidden.targets.add(tabId);
      }
      // At once, inside the answer's own dispatch: nothing after it may pass unscreened. (Not
      // another hold's: this one may have ended early.)
      if (this.held === hold) this.release();
    }).then(() => {
      if (!hidden) throw new Error('the browser made no hidden target');
      return hidden;
    });
  }

  /** Stops hiding targets (the spare handed to the runner, to be what the user sees). */
  unhide(...ids: Array<string | undefined>): void {
    for (const id of ids) if (id !== undefined) this.hidden.targets.delete(id);
  }

  /** Settles once no hidden target is being made: `/json/list` waits for it. */
  settled(): Promise<void> {
    if (!this.held) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** Fire and forget on a session (or the root), its answer ignored. */
  notify(method: string, params: Record<string, unknown>, sessionId?: string): void {
    this.ownCall(method, params, sessionId).catch((error: unknown) =>
      this.logger.debug({ err: error, method }, 'call on behalf of the relay failed'),
    );
  }

  private ownCall(
    method: string,
    params: Record<string, unknown>,
    sessionId?: string,
    // Runs inside the answer's dispatch, before anything after it (a promise would run later).
    onAnswer?: (result: Record<string, unknown> | undefined) => void,
  ): Promise<Record<string, unknown>> {
    if (this.upstream.closed) {
      onAnswer?.(undefined);
      return Promise.reject(new Error('the browser connection is closed'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        onAnswer?.(undefined);
        reject(new Error(`the browser did not answer ${method} within ${ROOT_CALL_TIMEOUT_MS} ms`));
      }, ROOT_CALL_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          onAnswer?.(result as Record<string, unknown> | undefined);
          resolve((result ?? {}) as Record<string, unknown>);
        },
        reject: (error) => {
          clearTimeout(timer);
          onAnswer?.(undefined);
          reject(error);
        },
      });
      this.upstream.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  private release(): void {
    const held = this.held;
    this.held = undefined;
    for (const message of held ?? []) this.dispatch(message);
    for (const waiter of this.settledWaiters.splice(0)) waiter();
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
    if (this.held && message.sessionId !== undefined) {
      this.held.push(message);
      if (this.held.length > MAX_HELD) {
        this.holdOverflowed = true;
        this.release();
      }
      return;
    }
    this.dispatch(message);
  }

  private dispatch(message: UpstreamMessage): void {
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
    this.held = undefined;
    for (const waiter of this.settledWaiters.splice(0)) waiter();
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
