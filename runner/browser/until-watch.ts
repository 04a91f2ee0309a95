/**
 * A takeover's `until` watched by the runner itself, over its own CDP channel to the browser
 * (`relay.runnerConnection()`): the page URLs from `Target.getTargets`, the cookie names from
 * `Storage.getCookies` (every context's). Unlike the desktop helper's watch, nothing here is the
 * sandbox's word: the agent is cut off while it runs and cannot fake it.
 */
import { type Until, urlGlobMatcher } from '../../sandbox-agent/until.ts';
import type { CdpConnection } from './cdp-connection.ts';

export const UNTIL_POLL_MS = 200;
const CALL_TIMEOUT_MS = 5_000;

/** Calls over one CdpConnection, matched by id. */
export class CdpCaller {
  private nextId = 1;
  private readonly pending = new Map<
    number,
    { resolve: (result: unknown) => void; reject: (error: Error) => void }
  >();

  constructor(private readonly connection: CdpConnection) {
    connection.onMessage((text) => {
      let message: { id?: unknown; result?: unknown; error?: { message?: unknown } };
      try {
        message = JSON.parse(text);
      } catch {
        return;
      }
      const waiter = typeof message.id === 'number' ? this.pending.get(message.id) : undefined;
      if (!waiter) return;
      this.pending.delete(message.id as number);
      if (message.error) waiter.reject(new Error(String(message.error.message ?? 'CDP error')));
      else waiter.resolve(message.result);
    });
    connection.onClose(() => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('the CDP channel closed'));
      this.pending.clear();
    });
  }

  call<T>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> {
    if (this.connection.closed) return Promise.reject(new Error('the CDP channel closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer to ${method} within ${CALL_TIMEOUT_MS} ms`));
      }, CALL_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, {
        resolve: (result) => {
          clearTimeout(timer);
          resolve(result as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.connection.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }
}

/**
 * Resolves with what held first (`url`, `cookie`) once the browser shows it; rejects when
 * `signal` aborts or the channel closes. Closes `connection` when it settles.
 */
export async function watchUntilOverCdp(
  connection: CdpConnection,
  until: Until,
  signal: AbortSignal,
): Promise<'url' | 'cookie'> {
  const caller = new CdpCaller(connection);
  const matches = until.url ? urlGlobMatcher(until.url) : undefined;
  try {
    for (;;) {
      signal.throwIfAborted();
      if (connection.closed) throw new Error('the CDP channel closed');
      if (matches) {
        const { targetInfos } = await caller.call<{ targetInfos: Array<{ type: string; url: string }> }>(
          'Target.getTargets',
        );
        if (targetInfos.some((target) => target.type === 'page' && matches(target.url))) return 'url';
      }
      if (until.cookie && (await cookieNames(caller)).includes(until.cookie)) return 'cookie';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, UNTIL_POLL_MS);
        signal.addEventListener(
          'abort',
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    }
  } finally {
    connection.close();
  }
}

async function cookieNames(caller: CdpCaller): Promise<string[]> {
  const { browserContextIds } = await caller.call<{ browserContextIds: string[] }>(
    'Target.getBrowserContexts',
  );
  // The default context has no id in that list; Storage.getCookies without one reads it.
  const lists = await Promise.all(
    [undefined, ...browserContextIds].map((browserContextId) =>
      caller
        .call<{ cookies: Array<{ name: string }> }>(
          'Storage.getCookies',
          browserContextId ? { browserContextId } : {},
        )
        .then((result) => result.cookies.map((cookie) => cookie.name))
        .catch(() => [] as string[]),
    ),
  );
  return lists.flat();
}
