/**
 * Watches a takeover's `until` condition from the runner, over the runner's own CDP connection to
 * the sandbox's browser (the relay's runnerConnection(), which a takeover's cut never closes):
 * every POLL_MS the page URLs (Target.getTargets) and the cookie names of every browser context
 * (Storage.getCookies), until the condition holds or the takeover ends.
 *
 * Runner-side on purpose: the agent is frozen and cut off from the browser while a takeover is
 * open, and it never speaks for the condition, so it cannot fake "met" (docs/browser.md).
 */
import { type Until, urlGlobMatcher } from '../../sandbox-agent/until.ts';

export type UntilMet = 'url' | 'cookie';

/** One CDP call on the runner's connection to the browser (runner/browser's CdpSession.call). */
export type UntilBrowser = (method: string, params?: Record<string, unknown>) => Promise<unknown>;

/** Resolves with what was met; rejects if the browser cannot be asked; `signal` stops it. */
export type WatchUntil = (browser: UntilBrowser, until: Until, signal: AbortSignal) => Promise<UntilMet>;

const POLL_MS = 200;

export const watchUntil: WatchUntil = async (browser, until, signal) => {
  const matches = until.url ? urlGlobMatcher(until.url) : undefined;
  for (;;) {
    if (signal.aborted) throw new Error('stopped');
    if (matches && (await pageUrls(browser)).some(matches)) return 'url';
    if (until.cookie && (await cookieNames(browser)).includes(until.cookie)) return 'cookie';
    await pause(POLL_MS, signal);
  }
};

/** Waits `ms`, or less if `signal` aborts; leaves no listener behind (a watch polls for minutes). */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

async function pageUrls(browser: UntilBrowser): Promise<string[]> {
  const { targetInfos } = (await browser('Target.getTargets')) as {
    targetInfos?: { type?: string; url?: string }[];
  };
  return (targetInfos ?? []).filter((t) => t.type === 'page' && typeof t.url === 'string').map((t) => t.url!);
}

/** The default context's cookies and every other context's: the user may log in in any tab. */
async function cookieNames(browser: UntilBrowser): Promise<string[]> {
  const { browserContextIds } = (await browser('Target.getBrowserContexts')) as {
    browserContextIds?: string[];
  };
  const all = await Promise.all(
    [undefined, ...(browserContextIds ?? [])].map(
      async (browserContextId) =>
        (
          (await browser('Storage.getCookies', browserContextId ? { browserContextId } : {})) as {
            cookies?: { name?: string }[];
          }
        ).cookies ?? [],
    ),
  );
  return all.flat().flatMap((c) => (typeof c.name === 'string' ? [c.name] : []));
}
