/**
 * The browser behind the runner: an agent reaches its browser only through a relay the runner
 * controls (GREXAL_CDP_URL inside the sandbox), whether the browser is the desktop sandbox's or a
 * local Chromium in `grexal dev`. runner/sandbox wires it; of the runner it imports errors.ts only.
 */
export {
  type CdpConnection,
  type CdpUpstream,
  DEFAULT_MAX_CDP_MESSAGE_BYTES,
  type NulFramingOptions,
  nulFramedConnection,
} from './cdp-connection.ts';
export { type CdpCall, type CdpEvents, CdpSession } from './cdp-session.ts';
export { BrowserContainerUpstream, type ContainerUpstreamOptions } from './container-upstream.ts';
export {
  DEFAULT_CHROMIUM_PATH,
  LocalChromium,
  type LocalChromiumOptions,
  localBrowserProblem,
} from './local-chromium.ts';
export { CDP_CUT_CLOSE_CODE, CdpRelay, type CdpRelayOptions } from './relay.ts';
export type { SpareTab, SpareTabs } from './spare-tab.ts';
