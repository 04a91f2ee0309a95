/**
 * The user's tab in a clean room (clean-room.ts): the relay's spare tab when it is as it was made,
 * else a new one. The spare is made ahead and hidden from the agent (runner/browser/spare-tab.ts);
 * what is checked here is that nothing changed it anyway.
 */
import type { Logger } from 'pino';
import type { CdpCall } from '../browser/index.ts';

export interface TargetInfo {
  targetId: string;
  type: string;
  url: string;
  openerId?: string;
  openerFrameId?: string;
  canAccessOpener?: boolean;
  browserContextId?: string;
}

/** What the relay's spare tab is known as (runner/browser/spare-tab.ts). */
export interface SpareTabSource {
  /** The spare, visible from now on; undefined when there is none. Called after the cut. */
  take(): Promise<{ targetId: string; browserContextId?: string } | undefined>;
  /** Makes the next spare if there is none; settles once it is made (or could not be). */
  prepare(): Promise<void>;
}

/** The user's tab: the spare (already attached: `sessionId`) or a new one. */
export interface UserTab {
  targetId: string;
  sessionId?: string;
  spare: boolean;
}

/**
 * The spare tab when it is as the relay made it, attached; else a new tab. A spare that is not
 * (navigated, scripted into history, opened by a page, another context) is left among the pages
 * to close.
 */
export async function userTab(
  cdp: CdpCall,
  taking: Promise<{ targetId: string; browserContextId?: string } | undefined> | undefined,
  logger: Logger,
): Promise<UserTab> {
  const spare = await taking?.catch(() => undefined);
  if (spare) {
    let sessionId: string | undefined;
    try {
      const { targetId } = spare;
      const [attached, { targetInfo }, contexts] = await Promise.all([
        cdp('Target.attachToTarget', { targetId, flatten: true }) as Promise<{ sessionId: string }>,
        cdp('Target.getTargetInfo', { targetId }) as Promise<{ targetInfo: TargetInfo }>,
        cdp('Target.getBrowserContexts') as Promise<{ browserContextIds?: string[] }>,
      ]);
      sessionId = attached.sessionId;
      const history = (await cdp('Page.getNavigationHistory', {}, sessionId)) as NavigationHistory;
      const unfit = spareUnfit(spare, targetInfo, history, contexts.browserContextIds ?? []);
      if (!unfit) return { targetId, sessionId, spare: true };
      logger.warn({ why: unfit }, 'clean room: the spare tab is not as made; a new tab instead');
    } catch (error) {
      logger.warn({ err: error }, 'clean room: the spare tab could not be checked; a new tab instead');
    }
    if (sessionId) await cdp('Target.detachFromTarget', { sessionId }).catch(() => {});
  }
  const { targetId } = (await cdp('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
  return { targetId, spare: false };
}

/**
 * A tab made at about:blank: its one entry is '' until that first navigation commits (a tab in
 * the background may take a while), then about:blank. No navigation of anyone's commits ''.
 */
const BLANK = new Set(['about:blank', '']);

export interface NavigationHistory {
  currentIndex: number;
  entries: Array<{ url: string }>;
}

/**
 * Why the spare may not be the user's tab (undefined: it may): anything but what the relay made,
 * a page in the default context, with no opener, whose history is its one about:blank entry.
 */
export function spareUnfit(
  spare: { targetId: string; browserContextId?: string },
  info: TargetInfo,
  history: NavigationHistory,
  otherContexts: string[],
): string | undefined {
  if (info.targetId !== spare.targetId || info.type !== 'page') return 'not the page made';
  if (!BLANK.has(info.url)) return 'navigated';
  if (
    history.entries.length !== 1 ||
    history.currentIndex !== 0 ||
    !BLANK.has(history.entries[0]?.url ?? '-')
  )
    return 'history';
  if (info.openerId !== undefined || info.openerFrameId !== undefined || info.canAccessOpener === true)
    return 'opener';
  // Target.getBrowserContexts lists every context but the default one.
  if (
    info.browserContextId === undefined ||
    info.browserContextId !== spare.browserContextId ||
    otherContexts.includes(info.browserContextId)
  )
    return 'browser context';
  return undefined;
}
