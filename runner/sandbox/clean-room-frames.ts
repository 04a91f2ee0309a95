/**
 * The service-worker bypass for a takeover page's cross-site frames. The bypass set on the user's
 * page's session covers only what is rendered with it: Chromium puts a cross-site iframe (a login
 * provider's widget, say) in a renderer and a DevTools target of its own, whose requests, its
 * form posts included, a worker the agent planted in that frame's storage partition would see.
 * Each such frame (and worker) is attached paused at its start, gets the bypass, and only then
 * runs; its own cross-site frames the same way. One whose bypass fails stays paused (a blank
 * frame, not a leak).
 */
import type { Logger } from 'pino';
import type { CdpCall, CdpEvents } from '../browser/index.ts';

/** Network on with no bodies kept: a form post's body stays out of the session's events. */
const NETWORK_NO_BODIES = { maxPostDataSize: 0, maxTotalBufferSize: 0, maxResourceBufferSize: 0 };
const AUTO_ATTACH = { autoAttach: true, waitForDebuggerOnStart: true, flatten: true };

/** CDP calls on one session (a page's or a frame's). */
export type SessionCall = (method: string, params?: Record<string, unknown>) => Promise<unknown>;

/** Turns the bypass on in the session `call` speaks on; errors thrown. */
export async function bypassWorkers(call: SessionCall): Promise<void> {
  await call('Network.enable', NETWORK_NO_BODIES);
  await call('Network.setBypassServiceWorker', { bypass: true });
}

/**
 * Attaches every frame and worker the page at `pageSession` starts, from now on, with the bypass
 * set before it runs. The answer stops watching (the sessions end with the page's detach).
 */
export async function bypassWorkersInFrames(
  cdp: CdpCall,
  events: CdpEvents,
  pageSession: string,
  logger: Logger,
): Promise<() => void> {
  const watched = new Set([pageSession]);
  const stop = events((method, params, parent) => {
    if (method !== 'Target.attachedToTarget' || !parent || !watched.has(parent)) return;
    const { sessionId, targetInfo } = (params ?? {}) as {
      sessionId?: unknown;
      targetInfo?: { type?: unknown };
    };
    if (typeof sessionId !== 'string') return;
    watched.add(sessionId);
    const call: SessionCall = (method, args = {}) => cdp(method, args, sessionId);
    void (async () => {
      try {
        await Promise.all([bypassWorkers(call), call('Target.setAutoAttach', AUTO_ATTACH)]);
      } catch (error) {
        logger.warn(
          { err: error, type: targetInfo?.type },
          'clean room: a frame without the worker bypass stays paused',
        );
        return;
      }
      await call('Runtime.runIfWaitingForDebugger').catch(() => {});
    })();
  });
  try {
    await cdp('Target.setAutoAttach', AUTO_ATTACH, pageSession);
  } catch (error) {
    stop();
    throw error;
  }
  return stop;
}
