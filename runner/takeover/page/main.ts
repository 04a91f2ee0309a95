/**
 * The takeover page's script (bundled for the browser by scripts/build.mjs into
 * dist/takeover/takeover.js). It shows the sandbox's desktop through noVNC, keeps the stream
 * connected while the takeover is open, and sends Done or Cancel. The token is read from this
 * page's query string and sent only to this runner (WebSocket URL, POST query).
 */
import RFB from '@novnc/novnc';
import './page.css';

import { type EndKind, showEnd } from './end-screen.ts';
import { startKeyboardButton } from './keyboard.ts';
import {
  EARLY_STREAM_KEY,
  type EarlyStream,
  FIRST_REQUESTS_TAG,
  PAGE_DATA_ELEMENT_ID,
  type PageData,
} from './page-data.ts';

/** The server's close codes that mean "over, do not reconnect" (runner/takeover/types.ts CLOSE_CODES). */
const FINAL_CLOSE: Record<number, EndKind> = {
  4001: 'completed',
  4002: 'cancelled',
  4003: 'expired',
  4004: 'elsewhere',
  4005: 'condition',
  4006: 'sandbox-gone',
};
const STATUS_POLL_MS = 3000;
const MAX_RETRY_DELAY_MS = 10_000;

const data = JSON.parse(byId(PAGE_DATA_ELEMENT_ID).textContent ?? '{}') as PageData;
const token = new URLSearchParams(location.search).get('token') ?? '';
const screen = byId('screen');
const statusEl = byId('status');
let rfb: RFB | undefined;
let finished = false;
let retries = 0;

function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`the page has no #${id}`);
  return el as T;
}

function setStatus(text: string, kind: 'ok' | 'wait' | 'error' | 'final'): void {
  statusEl.textContent = text;
  statusEl.dataset['kind'] = kind;
}

/** Random per tab: reconnecting with the same key takes back control of the keyboard and mouse. */
function viewerKey(): string {
  const name = `grexal-viewer-${data.id}`;
  let key = sessionStorage.getItem(name);
  if (!key) {
    const bytes = crypto.getRandomValues(new Uint8Array(18));
    key = btoa(String.fromCharCode(...bytes))
      .replace(/\+/g, '-')
      .replace(/\//g, '_');
    sessionStorage.setItem(name, key);
  }
  return key;
}

function endpoint(path: string, protocol?: 'ws'): URL {
  const url = new URL(`../v1/takeovers/${encodeURIComponent(data.id)}/${path}`, location.href);
  url.searchParams.set('token', token);
  if (protocol) url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url;
}

/** The socket the inline boot script opened (boot.ts), once: reconnects open their own. */
function takeEarlyStream(): EarlyStream | undefined {
  const holder = window as unknown as Record<string, EarlyStream | undefined>;
  const early = holder[EARLY_STREAM_KEY];
  holder[EARLY_STREAM_KEY] = undefined;
  return early;
}

function connect(): void {
  const early = takeEarlyStream();
  if (early?.closed !== undefined) {
    void afterDisconnect(early.closed);
    return;
  }
  let ws: WebSocket;
  if (early) {
    ws = early.ws;
  } else {
    const url = endpoint('stream', 'ws');
    url.searchParams.set('viewer', viewerKey());
    url.searchParams.set('handshake', 'pipelined');
    url.searchParams.set('first', FIRST_REQUESTS_TAG);
    ws = new WebSocket(url.href);
  }
  ws.binaryType = 'arraybuffer';
  let closeCode = 0;
  ws.addEventListener('close', (event) => {
    closeCode = event.code;
  });
  const session = new RFB(screen, ws, { shared: true });
  session.scaleViewport = true;
  // Only the controlling viewer's window sizes the desktop (the bridge drops anyone else's request,
  // as it drops a view-only viewer's input: the page only tells, the bridge enforces).
  session.resizeSession = controls;
  session.background = '#1b1d21';
  const firstFrame = firstFrameOf(screen);
  session.addEventListener('connect', () => {
    retries = 0;
    firstFrame.connected();
    setStatus('Connected', 'ok');
    // The canvas is in view: no scrolling into view, which would lay the page out here.
    session.focus({ preventScroll: true });
    // 'connect' comes with the handshake, when the first frame is about to be decoded and drawn
    // (often already here: asked ahead). The status call's answer (DOM updates, a layout) waits
    // until the page is idle, so it does not come between the frame's data and its drawing.
    afterFirstFrame(() => void pollStatus());
  });
  session.addEventListener('disconnect', () => {
    rfb = undefined;
    // The WebSocket's close event runs before noVNC reports the disconnect.
    setTimeout(() => void afterDisconnect(closeCode), 0);
  });
  rfb = session;
  // noVNC took the socket (its own onmessage) in its constructor. What came before goes to it now,
  // in order and within this task, so no newer message overtakes; only now, because a held
  // handshake completes at once and its 'connect' must find the listener above.
  for (const message of early?.held.splice(0) ?? []) ws.onmessage?.call(ws, message);
}

/**
 * Tells the runner when this page drew its first frame (http-timing.ts), on the page's own clock:
 * the first draw onto noVNC's visible canvas once connected (earlier draws are the blank screen of
 * a resize). Reported once per page, when idle after it, so the report is never on the frame's path.
 */
function firstFrameOf(container: HTMLElement): { connected(): void } {
  let reported = false;
  return {
    connected() {
      const connectMs = performance.now();
      const ctx = container.querySelector('canvas')?.getContext('2d');
      if (reported || !ctx) return;
      // This canvas's own drawImage, for one call: then the prototype's again.
      ctx.drawImage = function (this: CanvasRenderingContext2D, ...args: unknown[]) {
        Reflect.deleteProperty(ctx, 'drawImage');
        (ctx.drawImage as (...a: unknown[]) => void)(...args);
        if (reported) return;
        reported = true;
        const firstFrameMs = performance.now();
        const body = JSON.stringify({ timeOrigin: performance.timeOrigin, connectMs, firstFrameMs });
        const url = endpoint('timing');
        url.searchParams.set('viewer', viewerKey());
        afterFirstFrame(() => void fetch(url, { method: 'POST', body, cache: 'no-store' }).catch(() => {}));
      } as CanvasRenderingContext2D['drawImage'];
    },
  };
}

/** Runs `fn` once the page's main thread is idle (the first frame drawn), within a second. */
function afterFirstFrame(fn: () => void): void {
  if (typeof requestIdleCallback === 'function') requestIdleCallback(fn, { timeout: 1000 });
  else setTimeout(fn, 250);
}

async function afterDisconnect(code: number): Promise<void> {
  const final = FINAL_CLOSE[code];
  if (final) return finish(final);
  if (finished) return;
  // A dropped socket or a refused upgrade look the same from here; the page's own URL says which.
  const state = await fetch(location.href, { method: 'HEAD', cache: 'no-store' }).then(
    (r) => r.status,
    () => 0,
  );
  if (state === 410) return finish('ended');
  if (state === 401 || state === 403 || state === 404) return finish('invalid');
  const delay = Math.min(MAX_RETRY_DELAY_MS, 500 * 2 ** retries++);
  setStatus(`Disconnected; reconnecting in ${Math.ceil(delay / 1000)} s…`, 'wait');
  setTimeout(() => {
    if (!finished) connect();
  }, delay);
}

function finish(kind: EndKind): void {
  if (finished) return;
  finished = true;
  setStatus(showEnd(kind), 'final');
  rfb?.disconnect();
  for (const id of ['done', 'cancel', 'paste', 'paste-clipboard', 'keyboard'])
    byId<HTMLButtonElement>(id).disabled = true;
  document.body.classList.add('finished');
}

/** Whether this tab has the keyboard and mouse, and the round trip to the runner as a latency figure. */
async function pollStatus(): Promise<void> {
  if (finished) return;
  const url = endpoint('viewer');
  url.searchParams.set('viewer', viewerKey());
  const started = performance.now();
  const response = await fetch(url, { cache: 'no-store' }).catch(() => undefined);
  const latency = Math.round(performance.now() - started);
  if (response?.status === 410) {
    // Over. With the stream up, its close code follows at once and says how it ended (the sandbox
    // gone, a condition met…), which a 410 does not: that screen wins, this one is the fallback.
    // With the stream just closed, its close code waits in a timer queued by the disconnect
    // handler (below): a timer of 0 runs after it, so the 410 cannot overtake the close code.
    statusTimer = setTimeout(() => finish('ended'), rfb ? 2000 : 0);
    return;
  }
  if (response?.ok) {
    const status = (await response.json()) as { controls: boolean; viewers: number };
    byId('latency').textContent = `${latency} ms`;
    byId('latency').dataset['quality'] = latency < 80 ? 'good' : latency < 200 ? 'fair' : 'poor';
    showControl(status.controls, status.viewers);
  }
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => void pollStatus(), STATUS_POLL_MS);
}
let statusTimer: ReturnType<typeof setTimeout> | undefined;

function showControl(has: boolean, viewers: number): void {
  const el = byId('control');
  el.dataset['control'] = has ? 'yes' : 'no';
  el.textContent = has ? 'You have control' : 'View only';
  el.title = has
    ? viewers > 1
      ? `${viewers - 1} other viewer(s) can watch, not type.`
      : 'Your keyboard and mouse reach the sandbox.'
    : 'Someone opened this link before you and has the keyboard and mouse; you can watch. Close their tab to take over here.';
  byId('control-why').textContent = has ? '' : el.title;
  if (controls !== has) {
    controls = has;
    if (rfb) rfb.resizeSession = has;
  }
}
let controls = true;

async function act(action: 'complete' | 'cancel'): Promise<void> {
  const response = await fetch(endpoint(action), { method: 'POST', cache: 'no-store' }).catch(
    () => undefined,
  );
  if (response?.ok) return finish(action === 'complete' ? 'completed' : 'cancelled');
  if (response?.status === 410) return finish('ended');
  setStatus('Could not reach the runner; try again.', 'error');
}

function showTimeLeft(): void {
  const left = Math.max(0, Date.parse(data.expiresAt) - Date.now());
  const minutes = Math.floor(left / 60_000);
  const seconds = Math.floor((left % 60_000) / 1000);
  byId('time-left').textContent = finished ? '' : `${minutes}:${String(seconds).padStart(2, '0')} left`;
  if (left === 0 && !finished) finish('expired');
}

/** Puts text on the sandbox's clipboard; the user then presses Ctrl+V inside the desktop. */
function paste(text: string): void {
  const note = byId('paste-note');
  if (!rfb || !text) {
    note.textContent = rfb ? '' : 'Not connected yet.';
    return;
  }
  rfb.clipboardPasteFrom(text);
  note.textContent = 'Sent: click in the desktop and press Ctrl+V.';
}

function askCancel(): void {
  if (confirm('Cancel the login? The agent will be told you cancelled.')) void act('cancel');
}

function wire(): void {
  byId('done').addEventListener('click', () => void act('complete'));
  byId('cancel').addEventListener('click', askCancel);
  // Alt+Shift+D / Alt+Shift+C, caught before noVNC so they never reach the sandbox.
  window.addEventListener(
    'keydown',
    (event) => {
      if (finished || !event.altKey || !event.shiftKey || event.ctrlKey || event.metaKey) return;
      const action = event.code === 'KeyD' ? 'done' : event.code === 'KeyC' ? 'cancel' : undefined;
      if (!action) return;
      event.preventDefault();
      event.stopImmediatePropagation();
      if (action === 'done') void act('complete');
      else askCancel();
    },
    true,
  );
  startKeyboardButton(byId<HTMLButtonElement>('keyboard'), byId<HTMLInputElement>('osk'), () => rfb);
  const box = byId<HTMLInputElement>('paste');
  // A paste is sent at once; typed text on Enter. The text may be a password: it never stays on screen.
  box.addEventListener('paste', (event) => {
    event.preventDefault();
    paste(event.clipboardData?.getData('text') ?? '');
  });
  box.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    paste(box.value);
    box.value = '';
  });
  byId('paste-clipboard').addEventListener('click', async () => {
    try {
      paste(await navigator.clipboard.readText());
    } catch {
      byId('paste-note').textContent = 'The browser refused clipboard access; paste into the box instead.';
    }
  });
  showTimeLeft();
  setInterval(showTimeLeft, 1000);
}

wire();
connect();
