/**
 * Instruments the takeover page in the bench's browser (an init script, before noVNC loads): the
 * page's WebSocket is wrapped to stamp when it opens, when noVNC sends its first byte (its script
 * is running and has the server's greeting), when it sends its first
 * FramebufferUpdateRequest (the RFB handshake is over) and when the first byte after that comes
 * back (the first rectangle, or the request itself when the frame was already there: sent ahead);
 * noVNC's Display.flip (a drawImage of its back buffer onto the
 * visible canvas, once per FramebufferUpdate) is wrapped to stamp every frame drawn, and, while a
 * key is pending, whether the canvas changed (the echo). All stamps are epoch milliseconds
 * (performance.timeOrigin + now()), on the same clock as the bench's Date.now().
 */
import type { BrowserContext, Page } from 'playwright-core';

export interface ViewerStamps {
  wsCreated: number;
  wsOpen: number;
  /** noVNC's first byte sent (its ProtocolVersion): its script runs and has the server's greeting. */
  firstSent: number;
  requested: number;
  firstRect: number;
  firstDrawn: number;
}

/** Runs in the page. Kept free of closures over bench code: playwright serialises it. */
function probe(): void {
  const now = (): number => performance.timeOrigin + performance.now();
  const state = {
    stamps: { wsCreated: 0, wsOpen: 0, firstSent: 0, requested: 0, firstRect: 0, firstDrawn: 0 },
    flips: [] as number[],
    keyAt: 0,
    echoAt: 0,
    before: '',
  };
  (window as unknown as { __probe: typeof state }).__probe = state;
  // noVNC checks the channel's own prototype for WebSocket's methods: the instance stays native,
  // only the constructor and `send` are wrapped.
  const Native = window.WebSocket;
  // A function declaration, not an arrow: noVNC's page calls it with `new`.
  function Probed(url: string | URL, protocols?: string | string[]): WebSocket {
    const ws = new Native(url, protocols);
    state.stamps.wsCreated = now();
    ws.addEventListener('open', () => {
      state.stamps.wsOpen = now();
    });
    ws.addEventListener('message', () => {
      if (state.stamps.requested && !state.stamps.firstRect) state.stamps.firstRect = now();
    });
    return ws;
  }
  Object.assign(Probed, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3, prototype: Native.prototype });
  window.WebSocket = Probed as unknown as typeof WebSocket;
  const nativeSend = Native.prototype.send;
  Native.prototype.send = function (this: WebSocket, data: Parameters<WebSocket['send']>[0]) {
    const bytes =
      data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : undefined;
    if (!state.stamps.firstSent) state.stamps.firstSent = now();
    // FramebufferUpdateRequest: type 3, 10 bytes; noVNC flushes each message on its own.
    if (bytes && !state.stamps.requested && bytes.length === 10 && bytes[0] === 3) {
      state.stamps.requested = now();
    }
    nativeSend.call(this, data);
  };
  // A sample of the visible canvas: every 7th pixel's colour.
  const sample = (canvas: HTMLCanvasElement): string => {
    const ctx = canvas.getContext('2d');
    if (!ctx || canvas.width === 0) return '';
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0;
    for (let p = 0; p < data.length; p += 28) hash = (hash * 31 + data[p]! + data[p + 1]! * 7) | 0;
    return String(hash);
  };
  const native = CanvasRenderingContext2D.prototype.drawImage;
  CanvasRenderingContext2D.prototype.drawImage = function (
    this: CanvasRenderingContext2D,
    ...args: unknown[]
  ) {
    (native as (...a: unknown[]) => void).apply(this, args);
    if (!(args[0] instanceof HTMLCanvasElement) || !this.canvas.isConnected) return;
    const at = now();
    state.flips.push(at);
    // The first flip once the first update was asked for. A runner that sends the first frame
    // ahead has it in the page before noVNC asks: that frame is drawn with no message after the
    // request, so its first rectangle counts as there when asked.
    if (state.stamps.requested && !state.stamps.firstDrawn) {
      state.stamps.firstDrawn = at;
      if (!state.stamps.firstRect) state.stamps.firstRect = state.stamps.requested;
      // FIRST_DRAWN_LINE, spelled out (the body cannot see the constant): the bench learns of the
      // frame from the console event Playwright already receives, with nothing run in the page.
      console.debug('grexal-probe: first frame drawn');
    }
    if (state.keyAt && !state.echoAt && sample(this.canvas) !== state.before) state.echoAt = at;
  } as typeof native;
  // Every key the user presses, captured before noVNC sees it.
  window.addEventListener(
    'keydown',
    (event) => {
      state.keyAt = performance.timeOrigin + event.timeStamp;
    },
    true,
  );
  (window as unknown as { __armKey: () => void }).__armKey = () => {
    const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement;
    state.before = sample(canvas);
    state.keyAt = 0;
    state.echoAt = 0;
  };
}

/** The probe as a script's text, for a browser driven from elsewhere (viewer-worker.ts). */
export const PROBE_SCRIPT = `(${probe.toString()})();`;
/** What the probe logs to the page's console once the first frame is drawn. */
const FIRST_DRAWN_LINE = 'grexal-probe: first frame drawn';
if (!PROBE_SCRIPT.includes(FIRST_DRAWN_LINE)) throw new Error('the probe no longer logs its first frame');

// A page that fails would only show as a timeout: say why.
const reportErrors = (page: Page) =>
  page.on('pageerror', (error) => console.error(`takeover page error: ${error.message}`));

export async function addViewerProbe(page: Page): Promise<void> {
  reportErrors(page);
  await page.addInitScript(probe);
}

/**
 * The probe in every page of the window, added once: a new tab then costs the bench no round trip
 * of its own (page.addInitScript's) between being made and being sent to the link.
 */
export async function addViewerProbeToContext(context: BrowserContext): Promise<void> {
  context.on('page', reportErrors);
  await context.addInitScript(probe);
}

export function viewerStamps(page: Page): Promise<ViewerStamps> {
  return page.evaluate(() => (window as unknown as { __probe: { stamps: ViewerStamps } }).__probe.stamps);
}

/**
 * How the bench waits for the first frame. `console` (the default): the probe's console line,
 * which Playwright receives anyway (it enables Runtime on every page); nothing runs in the page.
 * `playwright` (the default until this stop): Playwright's waitForFunction, which injects
 * Playwright's ~200 KB InjectedScript into the page right after `load` and polls every animation
 * frame; its compile (10–20 ms of the page's main thread, traced by bench/takeover/trace.ts) lands
 * between the WebSocket's open and noVNC's first request, on the path to the frame it measures.
 * `bench/takeover --probe-wait-ab` alternates the two. What counts as drawn (the probe's stamp) is
 * the same either way.
 */
export type ProbeWait = 'console' | 'playwright';

/**
 * Starts waiting for the first frame after the first rectangle; call it before `page.goto`, as a
 * console line logged during the load would otherwise be missed. Resolves with the probe's stamps.
 */
export function watchFirstDrawn(page: Page, wait: ProbeWait = 'console'): () => Promise<ViewerStamps> {
  const logged =
    wait === 'console'
      ? page.waitForEvent('console', { predicate: (m) => m.text() === FIRST_DRAWN_LINE, timeout: 30_000 })
      : undefined;
  // Awaited only once the load is through; its failure then is the wait's, reported below.
  logged?.catch(() => {});
  return async () => {
    try {
      if (logged) await logged;
      else
        await page.waitForFunction(
          () => (window as unknown as { __probe: { stamps: ViewerStamps } }).__probe.stamps.firstDrawn > 0,
          undefined,
          { polling: 'raf', timeout: 30_000 },
        );
    } catch (error) {
      const seen = await page.evaluate(
        () =>
          `${document.querySelector('#status')?.textContent} ${JSON.stringify((window as unknown as { __probe: unknown }).__probe)}`,
      );
      throw new Error(`no first frame drawn; the probe saw ${seen.slice(0, 400)}`, { cause: error });
    }
    return viewerStamps(page);
  };
}

/** Waits until the first frame after the first rectangle is drawn (the page already loading). */
export function waitFirstDrawn(page: Page): Promise<ViewerStamps> {
  return watchFirstDrawn(page, 'playwright')();
}

/** Presses `key` in the page (noVNC has the focus) and resolves with keydown → changed frame drawn, ms. */
export async function keyToEcho(page: Page, key: string, timeoutMs = 5000): Promise<number> {
  await page.evaluate(() => (window as unknown as { __armKey: () => void }).__armKey());
  await page.keyboard.press(key);
  const handle = await page.waitForFunction(
    () => {
      const s = (window as unknown as { __probe: { keyAt: number; echoAt: number } }).__probe;
      return s.echoAt && s.keyAt ? s.echoAt - s.keyAt : 0;
    },
    undefined,
    { polling: 10, timeout: timeoutMs },
  );
  return (await handle.jsonValue()) as number;
}

/** Frames drawn per second over the next `windowMs`. */
export async function framesPerSecond(page: Page, windowMs: number): Promise<number> {
  const from = await page.evaluate(() => performance.timeOrigin + performance.now());
  await page.waitForTimeout(windowMs);
  const flips = await page.evaluate(
    (since) => (window as unknown as { __probe: { flips: number[] } }).__probe.flips.filter((t) => t > since),
    from,
  );
  return (flips.length * 1000) / windowMs;
}

/** Clicks the desktop at (x, y) in its own pixels, through noVNC, as the user would click a field. */
export async function clickDesktop(page: Page, x: number, y: number): Promise<void> {
  const at = await page.evaluate(
    ([dx, dy]) => {
      const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement;
      const box = canvas.getBoundingClientRect();
      return {
        x: box.left + (dx! * box.width) / canvas.width,
        y: box.top + (dy! * box.height) / canvas.height,
      };
    },
    [x, y],
  );
  await page.mouse.click(at.x, at.y);
}

/** The desktop's size as the page's noVNC has it (its framebuffer), e.g. "1280×800". */
export function desktopSize(page: Page): Promise<string> {
  return page.evaluate(() => {
    const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
    return canvas ? `${canvas.width}×${canvas.height}` : 'none';
  });
}
