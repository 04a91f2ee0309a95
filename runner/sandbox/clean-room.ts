/**
 * A clean-room takeover (docs/browser.md): while the user types, the agent is cut off from the
 * browser (every CDP connection it had is closed, and none is accepted), frozen (its container
 * paused), and the page the user types into is loaded afresh by the runner in a new tab, after
 * the cut (the relay's spare tab, made ahead and hidden from the agent, when it is still as it
 * was made, clean-room-tab.ts; else one created then): no session of the agent's is left to have
 * injected a script, intercepted a request or listened to an event, and what it could have
 * planted in the browser for the login's origin
 * (service workers, Cache Storage, the HTTP cache) is cleared first. Cookies stay: they are what
 * the agent gets back after Done.
 */
import type { Logger } from 'pino';
import type { CdpCall, CdpEvents } from '../browser/index.ts';
import type { ContainerHandle } from '../runtime/index.ts';
import { bypassWorkers, bypassWorkersInFrames, type SessionCall } from './clean-room-frames.ts';
import { type SpareTabSource, type TargetInfo, type UserTab, userTab } from './clean-room-tab.ts';

export { type NavigationHistory, type SpareTabSource, spareUnfit } from './clean-room-tab.ts';

/** What a clean room needs of the CDP relay in front of the agent. */
export interface AgentCdpGate {
  /** Closes every agent connection and refuses new ones until resume(). */
  cut(reason: string): void;
  resume(): void;
}

/**
 * How long the agent's return waits for the next spare at the end of a takeover (beside its thaw).
 * Past it the agent is let in and the spare is finished behind the relay's hold.
 */
const NEXT_SPARE_WAIT_MS = 1000;

export interface CleanRoomDeps {
  agent: Pick<ContainerHandle, 'pause' | 'unpause'>;
  gate: AgentCdpGate;
  /** The runner's own connection to the browser, never cut, and its events. */
  cdp: CdpCall;
  cdpEvents: CdpEvents;
  logger: Logger;
  /**
   * Called once the fresh page is in place (every other page closed, the new one navigated and
   * committed), possibly before the agent is frozen: the user may see the screen from then on,
   * while the user's input waits for the whole room (takeover-call.ts). If the freeze fails
   * afterwards, the room fails and the takeover is cancelled before any input reached the sandbox.
   */
  onShown?: () => void;
  /**
   * When to freeze the agent: once this settles (default at once). The user's input waits for the
   * freeze however late it comes, so it may wait until the user's first frame is out, off the
   * path of what the user waits for first (takeover-call.ts).
   */
  freezeWhen?: Promise<void>;
  /** The relay's spare tab, used instead of a new one when it is pristine. */
  spare?: SpareTabSource;
}

export interface CleanRoom {
  /** The URL loaded afresh for the user (the agent's page's), or undefined if it had none. */
  readonly url?: string;
  /** Whether the agent is frozen: not when the page is the agent's own (on the sandbox's loopback). */
  readonly frozen: boolean;
  /**
   * Thaws the agent and lets it reconnect; idempotent, on every path. Unless `nextSpare` is false
   * (a stop follows), the next takeover's spare tab is made first, beside the thaw.
   */
  close(options?: { nextSpare?: boolean }): Promise<void>;
}

/**
 * Cuts the agent off, freezes it, and loads its page afresh in a new tab (closing every other
 * page). On failure the agent is thawed and let back in, and the error thrown: no takeover opens
 * half clean.
 */
export async function openCleanRoom(deps: CleanRoomDeps): Promise<CleanRoom> {
  const { agent, gate, cdp, logger } = deps;
  let closed: Promise<void> | undefined;
  let frozen = false;
  const held: HeldSession = {};
  const close = ({ nextSpare = true }: { nextSpare?: boolean } = {}): Promise<void> => {
    closed ??= (async () => {
      await Promise.all([
        frozen
          ? agent
              .unpause()
              .catch((error: unknown) => logger.error({ err: error }, 'thawing the agent failed'))
          : undefined,
        // The next spare, before the agent is let back in: no agent is connected to see it made,
        // and a takeover asked as soon as this one ends finds it ready (made after the resume, it
        // would be on that takeover's path). Beside the thaw, so mostly hidden behind it.
        nextSpare && deps.spare ? boundedWait(deps.spare.prepare(), NEXT_SPARE_WAIT_MS) : undefined,
        // The user's page's session, kept for its service-worker bypass, ends with the takeover
        // (its frames' sessions with it).
        held.sessionId
          ? cdp('Target.detachFromTarget', { sessionId: held.sessionId }).catch(() => {})
          : undefined,
      ]);
      held.stopFrames?.();
      gate.resume();
    })();
    return closed;
  };
  const started = Date.now();
  // Each step's end, in ms from the cut (`at`: the cut's epoch ms, to line it up with a viewer's).
  const took: StepTimes = { at: started };
  const mark = (step: Exclude<keyof StepTimes, 'at' | 'spare'>) => {
    took[step] = Date.now() - started;
  };
  try {
    gate.cut('takeover');
    // After the cut, at once: the user's tab (the spare, checked, or a new one), and the list of
    // every page the agent can have opened (the ones to close; the user's is left out of it,
    // whichever came first; a spare found used is among them).
    const [listed, tab] = await Promise.all([
      pages(cdp).finally(() => mark('listMs')),
      userTab(cdp, deps.spare?.take(), logger),
    ]);
    took.spare = tab.spare;
    mark('tabMs');
    const { targetId } = tab;
    const old = listed.filter((t) => t.targetId !== targetId);
    const url = agentPageUrl(old);
    // A page on the sandbox's loopback is served by the agent itself: it receives what the user
    // types there by design, and frozen it could not even answer. Anything else: frozen.
    // The freeze (an engine call) and the fresh page (CDP) at once: both before the link exists.
    const freezing =
      !url || !servedByAgent(url)
        ? (deps.freezeWhen ?? Promise.resolve())
            .then(() => {
              mark('freezeAskMs');
              return agent.pause();
            })
            .then(() => {
              frozen = true;
              mark('freezeMs');
            })
        : undefined;
    const showing = freshPage(deps, tab, old, url, held, mark, () => {
      mark('pageMs');
      deps.onShown?.();
    });
    const [froze, loaded] = await Promise.allSettled([freezing, showing]);
    if (froze.status === 'rejected') throw froze.reason;
    if (loaded.status === 'rejected') throw loaded.reason;
    // A page opened after the list (a popup from an agent page's script, in the moment before
    // its tab closed) would run beside the user's: whatever page but the user's is still there
    // once the page is shown and the agent frozen is closed before the room, and input, opens.
    await closeStrays(cdp, targetId);
    logger.info(
      { origin: url ? new URL(url).origin : undefined, frozen, ...took },
      'clean room: agent cut off, page loaded afresh',
    );
    return { url, frozen, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** When each step of a clean room ended, in ms from the cut (its log line). */
interface StepTimes {
  at: number;
  spare?: boolean;
  /** Every page listed. */
  listMs?: number;
  /** The user's tab ready (the spare checked, or a new one made). */
  tabMs?: number;
  /** Every other page closed. */
  closeMs?: number;
  /** The origin's workers, Cache Storage and the HTTP cache cleared. */
  clearMs?: number;
  /** The fresh page committed: the screen may be shown. */
  pageMs?: number;
  /** The freeze asked for (after the user's first frame, or a second after the page is shown). */
  freezeAskMs?: number;
  /** The agent paused. */
  freezeMs?: number;
}

function boundedWait(work: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([work.catch(() => {}), timeout]).finally(() => clearTimeout(timer));
}

async function pages(cdp: CdpCall): Promise<TargetInfo[]> {
  const { targetInfos } = (await cdp('Target.getTargets')) as { targetInfos: TargetInfo[] };
  return targetInfos.filter((t) => t.type === 'page');
}

async function closeStrays(cdp: CdpCall, keep: string): Promise<void> {
  const strays = (await pages(cdp)).filter((t) => t.targetId !== keep);
  await Promise.all(strays.map((t) => cdp('Target.closeTarget', { targetId: t.targetId }).catch(() => {})));
}

/** The page the agent left for the user: its first http(s) one, else a data: page it wrote. */
function agentPageUrl(old: TargetInfo[]): string | undefined {
  const urls = old.map((t) => t.url);
  return urls.find((u) => /^https?:\/\//.test(u)) ?? urls.find((u) => u.startsWith('data:'));
}

/** On loopback: the network namespace is the agent's, so whatever listens there is the agent's. */
export function servedByAgent(url: string): boolean {
  // A data: page is the agent's own writing: what is typed there stays in the page, which the
  // agent reads afterwards anyway; freezing it protects nothing.
  if (url.startsWith('data:')) return true;
  const host = new URL(url).hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return (
    host === 'localhost' ||
    host.endsWith('.localhost') ||
    host === '::1' ||
    host === '0.0.0.0' ||
    /^127\.\d+\.\d+\.\d+$/.test(host)
  );
}

/**
 * The user's tab with `url` (or blank), every other page (`old`) closed; `shown` once it is what
 * the screen shows (navigated, committed).
 */
async function freshPage(
  { cdp, cdpEvents, logger }: CleanRoomDeps,
  tab: UserTab,
  old: TargetInfo[],
  url: string | undefined,
  held: HeldSession,
  mark: (step: 'closeMs' | 'clearMs') => void,
  shown: () => void,
): Promise<void> {
  const { targetId } = tab;
  // Other pages go first: no window the agent's scripts ran in may hold the new one (opener,
  // same-origin frames), no script of theirs keeps running while the user types, and none is
  // left to plant a service worker or a cache entry after the origin is cleared below. The spare
  // waits behind the agent's tabs: brought to the front at once.
  await Promise.all([
    ...(tab.spare ? [cdp('Target.activateTarget', { targetId })] : []),
    ...old.map((t) => cdp('Target.closeTarget', { targetId: t.targetId }).catch(() => {})),
  ]);
  mark('closeMs');
  // A new tab opens in the foreground: with every other one closed it is the screen.
  if (!url) {
    if (tab.sessionId) void cdp('Target.detachFromTarget', { sessionId: tab.sessionId }).catch(() => {});
    return shown();
  }
  const sessionId =
    tab.sessionId ??
    ((await cdp('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string }).sessionId;
  held.sessionId = sessionId;
  const call: SessionCall = (method, params = {}) => cdp(method, params, sessionId);
  if (/^https?:/.test(url)) {
    // Both settled before a failure is thrown: the watch, once made, is stopped by close().
    const [watching, clearing] = await Promise.allSettled([
      bypassWorkersInFrames(cdp, cdpEvents, sessionId, logger).then((stop) => {
        held.stopFrames = stop;
      }),
      clearOrigin(call, new URL(url).origin),
    ]);
    if (watching.status === 'rejected') throw watching.reason;
    if (clearing.status === 'rejected') throw clearing.reason;
  }
  mark('clearMs');
  // Answers once the new document has committed: from then on the screen shows it.
  await call('Page.navigate', { url });
  shown();
  await cdp('Target.activateTarget', { targetId });
}

/** The runner's session on the user's page, detached when the takeover ends. */
interface HeldSession {
  sessionId?: string;
  /** Stops watching the page's frames (clean-room-frames.ts). */
  stopFrames?: () => void;
}

async function clearOrigin(call: SessionCall, origin: string): Promise<void> {
  // What the agent could have left for the login's origin: a service worker that answers the
  // page's requests, Cache Storage it reads from, responses it fulfilled into the HTTP cache.
  // (On the page's session: Chromium refuses clearDataForOrigin on a browser-level one.)
  // Both at once (one session answers in order; the load waits for both answers).
  //
  // The clearing alone is not enough for workers: a closed agent page's scripts run on for tens
  // of ms after Target.closeTarget answers (docs/browser.md), long enough to register one again
  // after the clearing, and the login may redirect through origins nobody cleared. So the user's
  // page bypasses every service worker for the whole takeover, on any origin it goes to: no
  // worker sees its requests, its form posts included, or serves it from Cache Storage. Chromium
  // applies the bypass only with Network enabled on a session that stays attached (the session
  // is detached when the takeover ends); post bodies are kept out of that session's events. Its
  // cross-site frames get the same bypass on sessions of their own (clean-room-frames.ts).
  await Promise.all([
    call('Storage.clearDataForOrigin', { origin, storageTypes: 'service_workers,cache_storage' }),
    (async () => {
      await bypassWorkers(call);
      await call('Network.clearBrowserCache');
    })(),
  ]);
}
