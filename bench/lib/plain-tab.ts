/**
 * A takeover link opened as a user's browser opens it: a tab made over the browser's own CDP
 * session (Target.createTarget with the link), which no tool attaches to. Playwright's newPage
 * makes a paused about:blank target, sends its per-page setup, then navigates a second time:
 * ~100 ms more than this to a blank page's load on this machine. Such a page carries no probe;
 * its first frame is the page's own report to the runner (runner/takeover/http-timing.ts), which
 * counts the same draw the probe does (bench/lib/viewer-probe.ts), within a millisecond.
 */
import type { Browser } from 'playwright-core';
import { TIMING_LOG_LINE } from '../../runner/takeover/http-timing.ts';
import type { ViewerTiming } from '../../runner/takeover/index.ts';
import type { ViewerStamps } from './viewer-probe.ts';

/** The launch flag that sizes a plain tab's window: Playwright gives it no viewport of its own. */
export const plainWindowSize = (viewport: { width: number; height: number }): string =>
  `--window-size=${viewport.width},${viewport.height}`;

/** A plain tab's stamps: only noVNC connected (as `requested`) and the first frame drawn are known. */
export function plainStamps(t: ViewerTiming): ViewerStamps {
  const unknown = Number.NaN;
  return {
    wsCreated: unknown,
    wsOpen: unknown,
    firstSent: unknown,
    requested: t.timeOrigin + t.connectMs,
    firstRect: unknown,
    firstDrawn: t.timeOrigin + t.firstFrameMs,
  };
}

/** A `grexal serve`'s log line, when it is a counted timing report (serve-child.ts onLog). */
export function timingOfLogLine(entry: Record<string, unknown>): ViewerTiming | undefined {
  if (entry['msg'] !== TIMING_LOG_LINE) return undefined;
  const { takeoverId, timeOrigin, connectMs, firstFrameMs } = entry as unknown as ViewerTiming;
  return { takeoverId, timeOrigin, connectMs, firstFrameMs };
}

export interface PlainTabs {
  /** Give it every timing report the runner takes (TakeoverHttpOptions.onViewerTiming, or a log). */
  onTiming(t: ViewerTiming): void;
  /** The next report for this takeover; ask before opening its link. */
  reported(takeoverId: string): Promise<ViewerTiming>;
  open(url: string): Promise<{ targetId: string }>;
  close(targetId: string): Promise<void>;
}

/** One window of its own (at the size plainWindowSize gave), whose tabs open the links. */
export async function openPlainTabs(browser: Browser): Promise<PlainTabs> {
  const cdp = await browser.newBrowserCDPSession();
  const { browserContextId } = (await cdp.send('Target.createBrowserContext')) as {
    browserContextId: string;
  };
  const window = (await cdp.send('Target.createTarget', {
    url: 'about:blank',
    browserContextId,
    newWindow: true,
  })) as { targetId: string };
  const { bounds } = (await cdp.send('Browser.getWindowForTarget', window)) as {
    bounds: { width: number; height: number };
  };
  console.log(`plain tabs: a window of ${bounds.width}×${bounds.height}`);
  const waiting = new Map<string, (t: ViewerTiming) => void>();
  return {
    onTiming(t) {
      waiting.get(t.takeoverId)?.(t);
      waiting.delete(t.takeoverId);
    },
    reported(takeoverId) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${takeoverId}: no timing report in 30 s`)), 30_000);
        waiting.set(takeoverId, (t) => {
          clearTimeout(timer);
          resolve(t);
        });
      });
    },
    open: (url) =>
      cdp.send('Target.createTarget', { url, browserContextId }) as Promise<{ targetId: string }>,
    close: (targetId) => cdp.send('Target.closeTarget', { targetId }).then(() => {}),
  };
}
