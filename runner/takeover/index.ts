/**
 * Takeovers: the user steps into a sandbox's desktop to log in, through a link the runner serves.
 * The broker keeps the sessions and tokens; the HTTP handlers serve the page and bridge its
 * WebSocket to the sandbox's VNC socket. runner/inject and runner/takeover do not import each
 * other: the sandbox lifecycle wires `ctx.request_takeover` to `TakeoverBroker.request`.
 */
export {
  type AuthorizedTakeover,
  type OpenedTakeover,
  TakeoverBroker,
  type TakeoverBrokerOptions,
  type TakeoverIds,
} from './broker.ts';
export {
  createTakeoverHandlers,
  startTakeoverServer,
  type TakeoverHandlers,
  type TakeoverHttpOptions,
  type TakeoverServer,
  type TakeoverServerOptions,
} from './http.ts';
export type { ViewerTiming } from './http-timing.ts';
export { isTakeoverError, TakeoverError } from './takeover-error.ts';
export {
  type CancelledBy,
  CLOSE_CODES,
  type TakeoverEndState,
  type TakeoverEvent,
  type TakeoverInfo,
  type TakeoverRequest,
  type TakeoverState,
} from './types.ts';
export { type UntilBrowser, type UntilMet, type WatchUntil, watchUntil } from './until-watch.ts';
