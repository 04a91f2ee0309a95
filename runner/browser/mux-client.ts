/**
 * One client of the mux (mux.ts): its session, its ids in flight, the sessions it owns, and what
 * it is sent. A malformed message ends it, and only it.
 */
import { screenEventForAgent, screenReplyForAgent } from './hidden-targets.ts';
import type { CdpMux } from './mux.ts';

/** Where a client's messages go: a WebSocket, or the runner's own CdpConnection. */
export interface MuxSink {
  send(message: string): void;
  close(code: number, reason: string): void;
}

export type ClientKind = { type: 'browser' } | { type: 'page'; targetId: string };

/**
 * What is sent for a client's message, the CDP error it is answered with, or `disconnect`: it is
 * answered with an empty result and the client's connection then ends, with that reason
 * (agent-policy.ts).
 */
export type ScreenMessage = (
  message: ClientMessage,
) => { message: ClientMessage } | { error: { code: number; message: string } } | { disconnect: string };

export interface ClientMessage {
  id: number;
  method: string;
  params?: Record<string, unknown>;
  sessionId?: string;
}

export interface UpstreamMessage {
  id?: unknown;
  method?: unknown;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: unknown;
  sessionId?: unknown;
}

/** Requests a client may have in flight, and messages it may send before its session exists. */
const MAX_PENDING_PER_CLIENT = 10_000;
const MAX_QUEUED_BEFORE_ATTACH = 1_000;
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

export class MuxClient {
  /** Sessions this client owns: its own, and every one attached through it. */
  readonly sessions = new Set<string>();
  implicitSession?: string;
  inFlight = 0;
  private queue: ClientMessage[] = [];
  private ended = false;

  /**
   * `screen`: what the client's messages pass through. A client with one is an agent's: hidden
   * targets (hidden-targets.ts) are hidden from it; the runner's own channel has none and sees all.
   */
  constructor(
    private readonly mux: CdpMux,
    private readonly kind: ClientKind,
    private readonly sink: MuxSink,
    private readonly screen?: ScreenMessage,
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

  private forward(given: ClientMessage): void {
    const screened = this.screen ? this.screen(given) : { message: given };
    if ('error' in screened || 'disconnect' in screened) {
      const { sessionId: named } = given;
      const answer = 'error' in screened ? { error: screened.error } : { result: {} };
      this.sink.send(JSON.stringify({ id: given.id, ...answer, ...(named ? { sessionId: named } : {}) }));
      if ('disconnect' in screened) this.end(1000, screened.disconnect);
      return;
    }
    const { message } = screened;
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
  deliverReply(clientId: number, method: string, given: UpstreamMessage): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.ended) return;
    const message = this.screen ? screenReplyForAgent(given, this.mux.hidden) : given;
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
    if (this.screen) {
      const delivery = screenEventForAgent(message, this.mux.hidden);
      if ('drop' in delivery) {
        const { detach } = delivery;
        // Chromium auto-attached this agent to a hidden target: undo it where it was attached,
        // letting the target run first if the agent had asked it to wait.
        if (detach?.waitingForDebugger)
          this.mux.notify('Runtime.runIfWaitingForDebugger', {}, detach.sessionId);
        if (detach)
          this.mux.notify('Target.detachFromTarget', { sessionId: detach.sessionId }, detach.parent);
        return;
      }
    }
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
