/**
 * The page's first script, inlined at the top of its <head> (the CSP allows it by its hash): it
 * opens the stream's WebSocket before the stylesheet and noVNC are even requested, so the upgrade
 * and the first handshake bytes overlap the bundle's download and compile instead of following
 * them. What arrives before main.ts runs is held; main.ts hands the socket to noVNC and replays it.
 *
 * It runs from its own source text (`bootStream.toString()`), so its body may use nothing from
 * outside itself: no imports, no module constants. The viewer key is made as main.ts's
 * viewerKey() makes it (same sessionStorage name and form), which then finds it.
 */
import { createHash } from 'node:crypto';
import { EARLY_STREAM_KEY, FIRST_REQUESTS_TAG } from './page-data.ts';

export function bootStream(): void {
  const match = /\/takeover\/([A-Za-z0-9_-]{1,64})$/.exec(location.pathname);
  const token = new URLSearchParams(location.search).get('token');
  if (!match || !token) return;
  const id = match[1] as string;
  const name = `grexal-viewer-${id}`;
  let key = sessionStorage.getItem(name);
  if (!key) {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    key = btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, '-')
      .replace(/\//g, '_');
    sessionStorage.setItem(name, key);
  }
  const url = new URL(`../v1/takeovers/${encodeURIComponent(id)}/stream`, location.href);
  url.searchParams.set('token', token);
  url.searchParams.set('viewer', key);
  // noVNC speaks RFB 3.8 with security None: the runner may send its whole handshake at once.
  url.searchParams.set('handshake', 'pipelined');
  // FIRST_REQUESTS_TAG, spelled out likewise: this page's noVNC asks for its first frame as the
  // runner's spare already did, so the runner may send it at once.
  url.searchParams.set('first', 'novnc17-q6c2');
  url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url.href);
  ws.binaryType = 'arraybuffer';
  const early: { ws: WebSocket; held: MessageEvent[]; closed?: number } = { ws, held: [] };
  // noVNC sets its own handlers when it takes the socket; until then these hold what comes.
  ws.onmessage = (event) => early.held.push(event);
  ws.onclose = (event) => {
    early.closed = event.code;
  };
  // EARLY_STREAM_KEY, spelled out: the body cannot see the constant.
  (window as unknown as Record<string, unknown>)['__grexalEarlyStream'] = early;
}

/** The inline script's text and its CSP source (`'sha256-…'`). */
export const BOOT_SCRIPT = `(${bootStream.toString()})();`;
if (!BOOT_SCRIPT.includes(EARLY_STREAM_KEY) || !BOOT_SCRIPT.includes(FIRST_REQUESTS_TAG))
  throw new Error('boot.ts and page-data.ts disagree');
export const BOOT_SCRIPT_HASH = `'sha256-${createHash('sha256').update(BOOT_SCRIPT).digest('base64')}'`;
