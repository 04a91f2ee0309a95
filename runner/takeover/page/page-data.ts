/** What the server embeds in the page for its script: safe to show, no token, no socket path. */
export interface PageData {
  id: string;
  reason: string;
  label?: string;
  /** ISO 8601. */
  expiresAt: string;
}

export const PAGE_DATA_ELEMENT_ID = 'takeover-data';

/** What the inline boot script (boot.ts) leaves on `window[EARLY_STREAM_KEY]` for main.ts. */
export interface EarlyStream {
  ws: WebSocket;
  /** Messages that arrived before noVNC took the socket, in order. */
  held: MessageEvent[];
  /** The close code, if the socket closed before noVNC took it. */
  closed?: number;
}

export const EARLY_STREAM_KEY = '__grexalEarlyStream';

/**
 * The stream's `first=` value: this page's noVNC sends, after ServerInit, exactly the requests
 * runner/takeover/first-requests.ts builds, so the runner may send the first frame before it asks.
 * Change it whenever those bytes change (noVNC upgraded, another quality level).
 */
export const FIRST_REQUESTS_TAG = 'novnc17-q6c2';
