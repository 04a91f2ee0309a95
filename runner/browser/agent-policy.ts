/**
 * What an agent may ask the browser through the relay. Nearly all of CDP passes untouched (that is
 * what makes agents work unchanged); the exceptions end the browser the run still needs, or reach
 * past it onto the machine it runs on, which in `grexal dev` is the developer's own:
 *  - `Target.exposeDevToolsProtocol` hands a page's scripts a DevTools channel of their own, one
 *    the relay does not see and a cut would not end;
 *  - `Tethering.bind` opens a listening port on the browser's machine;
 *  - `Browser.close` would end the browser that the sandbox's takeovers (and the runner's own
 *    spare tab) need for the rest of the run: it ends the agent's connection instead, answered as
 *    a browser answers it just before it goes, which is what a library's `browser.close()` waits
 *    for (Puppeteer sends it; Playwright's `connectOverCDP` browser only disconnects). The
 *    `Browser.crash` methods are refused outright;
 *  - a download path (`Browser.setDownloadBehavior`, `Page.setDownloadBehavior`) is a directory on
 *    the browser's machine that downloads are written into: it becomes the relay's own directory
 *    (or downloads are denied when there is none). Playwright passes a path of the agent's
 *    machine there anyway, which means nothing to the browser's.
 * And a message that names a hidden target or session (the runner's spare tab) is answered as
 * Chromium answers an unknown id (hidden-targets.ts).
 */
import { type HiddenTargets, refuseNamingHidden } from './hidden-targets.ts';
import type { ClientMessage, ScreenMessage } from './mux.ts';

export interface AgentPolicy {
  /** Where an agent's downloads go on the browser's machine. Default: none, downloads denied. */
  downloadsDir?: string;
}

const REFUSED = new Set([
  'Target.exposeDevToolsProtocol',
  'Tethering.bind',
  'Tethering.unbind',
  'Browser.crash',
  'Browser.crashGpuProcess',
]);
const DOWNLOAD_METHODS = new Set(['Browser.setDownloadBehavior', 'Page.setDownloadBehavior']);

/** The message to send on the agent's behalf, the CDP error to answer it with, or a disconnect. */
export function screenAgentMessage(
  message: ClientMessage,
  policy: AgentPolicy,
  hidden?: HiddenTargets,
): ReturnType<ScreenMessage> {
  const naming = hidden ? refuseNamingHidden(message, hidden) : undefined;
  if (naming) return { error: naming };
  if (REFUSED.has(message.method))
    return {
      error: { code: -32000, message: `${message.method} is not available through the runner's CDP relay.` },
    };
  if (message.method === 'Browser.close')
    return { disconnect: "Browser.close: the sandbox's browser stays up; this connection ends" };
  if (!DOWNLOAD_METHODS.has(message.method)) return { message };
  const params = { ...(message.params ?? {}) };
  const allows = params['behavior'] === 'allow' || params['behavior'] === 'allowAndName';
  delete params['downloadPath'];
  if (allows && policy.downloadsDir) params['downloadPath'] = policy.downloadsDir;
  else if (allows) params['behavior'] = 'deny';
  return { message: { ...message, params } };
}
