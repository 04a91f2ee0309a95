/**
 * The runner's own CDP client over one CdpConnection (the relay's runnerConnection(), or an
 * upstream directly): numbered calls with their answers, flat sessions (`sessionId`), events.
 * Small on purpose: the runner only lists targets, navigates a page, reads cookies and clears an
 * origin's storage (the clean-room takeover and the `until` watch); agents bring their own client.
 */
import type { CdpConnection } from './cdp-connection.ts';

export type CdpCall = (
  method: string,
  params?: Record<string, unknown>,
  sessionId?: string,
) => Promise<unknown>;

/** One CDP event, of any session (`sessionId` unset for the browser's own). */
export type CdpEventListener = (method: string, params: unknown, sessionId?: string) => void;
/** Subscribes to every event; the answer unsubscribes. */
export type CdpEvents = (listener: CdpEventListener) => () => void;

interface Pending {
  method: string;
  resolve(result: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/** Ids from here up: far from what a relay hands its agents, should both share one connection. */
const FIRST_ID = 1_000_000_000;

export class CdpSession {
  private nextId = FIRST_ID;
  private readonly pending = new Map<number, Pending>();
  private readonly eventListeners: CdpEventListener[] = [];
  private closedWhy?: Error;

  constructor(
    private readonly connection: CdpConnection,
    private readonly timeoutMs = 10_000,
  ) {
    connection.onMessage((text) => this.receive(text));
    connection.onClose((why) => {
      this.closedWhy = why ?? new Error('the CDP connection closed');
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(this.closedWhy);
        this.pending.delete(id);
      }
    });
  }

  get closed(): boolean {
    return this.closedWhy !== undefined;
  }

  call: CdpCall = (method, params = {}, sessionId) => {
    if (this.closedWhy) return Promise.reject(this.closedWhy);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`CDP ${method} had no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { method, resolve, reject, timer });
      this.connection.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  };

  onEvent: CdpEvents = (listener) => {
    this.eventListeners.push(listener);
    return () => {
      const i = this.eventListeners.indexOf(listener);
      if (i >= 0) this.eventListeners.splice(i, 1);
    };
  };

  close(): void {
    this.connection.close();
  }

  private receive(text: string): void {
    let message: {
      id?: unknown;
      result?: unknown;
      error?: { message?: string };
      method?: unknown;
      params?: unknown;
      sessionId?: unknown;
    };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    if (typeof message.id === 'number') {
      const p = this.pending.get(message.id);
      if (!p) return;
      this.pending.delete(message.id);
      clearTimeout(p.timer);
      if (message.error) p.reject(new Error(`CDP ${p.method}: ${message.error.message ?? 'unknown error'}`));
      else p.resolve(message.result ?? {});
      return;
    }
    if (typeof message.method === 'string') {
      const sessionId = typeof message.sessionId === 'string' ? message.sessionId : undefined;
      for (const listener of this.eventListeners) listener(message.method, message.params, sessionId);
    }
  }
}
