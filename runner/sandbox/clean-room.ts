/**
 * A clean-room takeover (docs/browser.md): while the user types, the agent is frozen (its
 * container paused), cut off from the browser (every CDP connection it had is closed, and none is
 * accepted), and the page the user types into is loaded afresh by the runner in a new tab, after
 * the cut: no session of the agent's is left to have injected a script, intercepted a request or
 * listened to an event, and what it could have planted in the browser for the login's origin
 * (service workers, Cache Storage, the HTTP cache) is cleared first. Cookies stay: they are what
 * the agent gets back after Done.
 */
import type { Logger } from 'pino';
import type { CdpCall } from '../browser/index.ts';
import type { ContainerHandle } from '../runtime/index.ts';

/** What a clean room needs of the CDP relay in front of the agent. */
export interface AgentCdpGate {
  /** Closes every agent connection and refuses new ones until resume(). */
  cut(reason: string): void;
  resume(): void;
}

interface TargetInfo {
  targetId: string;
  type: string;
  url: string;
}

export interface CleanRoomDeps {
  agent: Pick<ContainerHandle, 'pause' | 'unpause'>;
  gate: AgentCdpGate;
  /** The runner's own connection to the browser, never cut. */
  cdp: CdpCall;
  logger: Logger;
}

export interface CleanRoom {
  /** The URL loaded afresh for the user (the agent's page's), or undefined if it had none. */
  readonly url?: string;
  /** Thaws the agent and lets it reconnect; idempotent, on every path. */
  close(): Promise<void>;
}

/**
 * Freezes the agent, cuts it off, and loads its page afresh in a new tab (closing every other
 * page). On failure the agent is thawed again and the error thrown: no takeover opens half clean.
 */
export async function openCleanRoom(deps: CleanRoomDeps): Promise<CleanRoom> {
  const { agent, gate, cdp, logger } = deps;
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (async () => {
      await agent
        .unpause()
        .catch((error: unknown) => logger.error({ err: error }, 'thawing the agent failed'));
      gate.resume();
    })();
    return closed;
  };
  try {
    await agent.pause();
    gate.cut('takeover');
    const url = await freshPage(cdp);
    logger.info(
      { origin: url ? new URL(url).origin : undefined },
      'clean room: agent frozen and cut off, page loaded afresh',
    );
    return { url, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** A new tab with the agent's page (its first http(s) page), every other page closed. */
async function freshPage(cdp: CdpCall): Promise<string | undefined> {
  const { targetInfos } = (await cdp('Target.getTargets')) as { targetInfos: TargetInfo[] };
  const pages = targetInfos.filter((t) => t.type === 'page');
  const url = pages.map((t) => t.url).find((u) => /^https?:\/\//.test(u));
  const { targetId } = (await cdp('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
  // Other pages go first: no window the agent's scripts ran in may hold the new one (opener,
  // same-origin frames), and no script of theirs keeps running while the user types.
  await Promise.all(pages.map((t) => cdp('Target.closeTarget', { targetId: t.targetId }).catch(() => {})));
  if (!url) return undefined;
  const { sessionId } = (await cdp('Target.attachToTarget', { targetId, flatten: true })) as {
    sessionId: string;
  };
  const call = (method: string, params: Record<string, unknown> = {}) =>
    (cdp as (m: string, p: Record<string, unknown>, s: string) => Promise<unknown>)(
      method,
      params,
      sessionId,
    );
  // What the agent could have left for the login's origin: a service worker that answers the
  // page's requests, Cache Storage it reads from, responses it fulfilled into the HTTP cache.
  await cdp('Storage.clearDataForOrigin', {
    origin: new URL(url).origin,
    storageTypes: 'service_workers,cache_storage',
  });
  await call('Network.enable');
  await call('Network.clearBrowserCache');
  await call('Network.disable');
  await call('Page.navigate', { url });
  await cdp('Target.detachFromTarget', { sessionId });
  await cdp('Target.activateTarget', { targetId });
  return url;
}
