/**
 * The takeover page's script (bundled for the browser by scripts/build.mjs into
 * dist/takeover/takeover.js). It shows the sandbox's desktop through noVNC, keeps the stream
 * connected while the takeover is open, and sends Done or Cancel. The token is read from this
 * page's query string and sent only to this runner (WebSocket URL, POST query).
 */
import RFB from '@novnc/novnc';
import './page.css';
import { PAGE_DATA_ELEMENT_ID, type PageData } from './page-data.ts';

/** The server's close codes that mean "over, do not reconnect" (runner/takeover/types.ts CLOSE_CODES). */
const FINAL_CLOSE: Record<number, string> = {
  4001: 'Done. You can close this tab.',
  4002: 'The takeover was cancelled. You can close this tab.',
  4003: 'The takeover expired. You can close this tab.',
  4004: 'The desktop is open in another tab.',
  4005: 'Signed in — handing back to the agent. You can close this tab.',
};
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

function connect(): void {
  const url = endpoint('stream', 'ws');
  url.searchParams.set('viewer', viewerKey());
  const ws = new WebSocket(url.href);
  ws.binaryType = 'arraybuffer';
  let closeCode = 0;
  ws.addEventListener('close', (event) => {
    closeCode = event.code;
  });
  const session = new RFB(screen, ws, { shared: true });
  session.scaleViewport = true;
  session.resizeSession = false;
  session.background = '#1b1d21';
  session.addEventListener('connect', () => {
    retries = 0;
    setStatus('Connected', 'ok');
    session.focus();
  });
  session.addEventListener('disconnect', () => {
    rfb = undefined;
    // The WebSocket's close event runs before noVNC reports the disconnect.
    setTimeout(() => void afterDisconnect(closeCode), 0);
  });
  rfb = session;
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
  if (state === 410) return finish('This takeover has ended. You can close this tab.');
  if (state === 401 || state === 403 || state === 404) return finish('This link is not valid.');
  const delay = Math.min(MAX_RETRY_DELAY_MS, 500 * 2 ** retries++);
  setStatus(`Disconnected; reconnecting in ${Math.ceil(delay / 1000)} s…`, 'wait');
  setTimeout(() => {
    if (!finished) connect();
  }, delay);
}

function finish(message: string): void {
  finished = true;
  setStatus(message, 'final');
  rfb?.disconnect();
  for (const id of ['done', 'cancel', 'paste', 'paste-clipboard'])
    byId<HTMLButtonElement>(id).disabled = true;
  document.body.classList.add('finished');
}

async function act(action: 'complete' | 'cancel'): Promise<void> {
  const response = await fetch(endpoint(action), { method: 'POST', cache: 'no-store' }).catch(
    () => undefined,
  );
  if (response?.ok) return finish(action === 'complete' ? FINAL_CLOSE[4001]! : FINAL_CLOSE[4002]!);
  if (response?.status === 410) return finish('This takeover had already ended.');
  setStatus('Could not reach the runner; try again.', 'error');
}

function showTimeLeft(): void {
  const left = Math.max(0, Date.parse(data.expiresAt) - Date.now());
  const minutes = Math.floor(left / 60_000);
  const seconds = Math.floor((left % 60_000) / 1000);
  byId('time-left').textContent = finished ? '' : `${minutes}:${String(seconds).padStart(2, '0')} left`;
  if (left === 0 && !finished) finish(FINAL_CLOSE[4003]!);
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

function wire(): void {
  byId('done').addEventListener('click', () => void act('complete'));
  byId('cancel').addEventListener('click', () => {
    if (confirm('Cancel the login? The agent will be told you cancelled.')) void act('cancel');
  });
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
