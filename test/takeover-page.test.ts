/**
 * The takeover page in a real browser (Debian's chromium through playwright-core) against the
 * runner's takeover server and a fake RFB server on a Unix socket: noVNC connects through the
 * bridge, clicks, keys and paste reach "the desktop" from the controlling tab only, a dropped
 * socket reconnects, Done and Cancel end the takeover, and the page obeys its own CSP.
 * The real desktop (Xtigervnc, Chromium in a sandbox) is covered by the end-to-end login test.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM_FLAGS } from '../examples/scripted-user.ts';
import { firstRequests } from '../runner/takeover/first-requests.ts';
import {
  startTakeoverServer,
  TakeoverBroker,
  type TakeoverServer,
  type ViewerTiming,
} from '../runner/takeover/index.ts';
import {
  type FakeRfbServer,
  type RfbClientConnection,
  startFakeRfbServer,
} from '../runner/takeover/testing/rfb-server.ts';
import { novncTrim } from '../scripts/novnc-trim.mjs';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

let dir: string;
let browser: Browser;
let vnc: FakeRfbServer;
let broker: TakeoverBroker;
let server: TakeoverServer;
const cspViolations: string[] = [];
const timings: ViewerTiming[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-takeover-page-'));
  // The page bundle as scripts/build.mjs makes it.
  await build({
    entryPoints: { takeover: 'runner/takeover/page/main.ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: ['chrome100'],
    outdir: join(dir, 'assets'),
    logLevel: 'warning',
    plugins: [novncTrim],
  });
  // Running as root in CI: Chromium's own sandbox needs an unprivileged user.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
});

afterAll(async () => {
  await browser?.close();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  broker.close();
  await server.close();
  await vnc.close();
});

async function setup(
  options: { until?: boolean; width?: number; height?: number } = {},
): Promise<{ link: string; id: string; done: Promise<'completed'> }> {
  vnc = await startFakeRfbServer(join(dir, `vnc-${Date.now()}.sock`), {
    width: options.width ?? 320,
    height: options.height ?? 200,
  });
  // With `until`, the condition "holds" 1.5 s after the takeover opens (the real watch is test/takeover-until.test.ts).
  broker = new TakeoverBroker({
    watchUntil: (_path, _until, signal) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => resolve('url'), 1500);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          reject(new Error('stopped'));
        });
      }),
  });
  server = await startTakeoverServer({
    broker,
    assetsDir: join(dir, 'assets'),
    onViewerTiming: (t) => timings.push(t),
  });
  const { takeover, done } = broker.request({
    sandboxId: 'sb-page',
    connectionId: 'example',
    label: 'Example',
    reason: 'Log in to Example, then press Done.',
    timeoutMs: 120_000,
    vncSocketPath: vnc.path,
    ...(options.until ? { until: { url: 'https://example.test/home*' }, browser: async () => ({}) } : {}),
  });
  return { link: broker.linkFor(takeover.id)!, id: takeover.id, done };
}

async function openPage(link: string, viewport = { width: 800, height: 600 }): Promise<Page> {
  const page = await browser.newPage({
    viewport,
    hasTouch: viewport.width < 600,
    isMobile: viewport.width < 600,
  });
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(link);
  await page.getByText('Connected', { exact: true }).waitFor();
  return page;
}

/**
 * The desktop connection a page just got: the first not among `known` with more than the three
 * first requests (pixel format, encodings, full update), which a runner's spare sends ahead
 * before any page takes it: a page's noVNC asks for the next update once it has drawn the first.
 */
async function desktopFor(known: RfbClientConnection[] = []): Promise<RfbClientConnection> {
  const find = () => vnc.connections.find((c) => c.messages.length > 3 && !known.includes(c));
  await expect.poll(find).toBeDefined();
  return find()!;
}

/** Resolves with the first message this desktop connection received that matches, past or future. */
function received(connection: RfbClientConnection, type: number, text?: string): Promise<Buffer> {
  const matches = (m: { type: number; bytes: Buffer }): boolean =>
    m.type === type && (text === undefined || m.bytes.subarray(8).toString('latin1') === text);
  const seen = connection.messages.find(matches);
  if (seen) return Promise.resolve(seen.bytes);
  return new Promise((resolve) => {
    const on = (m: { type: number; bytes: Buffer }): void => {
      if (!matches(m)) return;
      connection.off('message', on);
      resolve(m.bytes);
    };
    connection.on('message', on);
  });
}

describe('takeover page', () => {
  it('shows the prompt and the desktop; input and paste reach it from the controlling tab only', async () => {
    const { link } = await setup();
    const user = await openPage(link);
    await expect(user.locator('h1').textContent()).resolves.toBe('Log in to Example');
    // The inline boot script opened the stream, and the page's script took that socket over.
    await expect(user.evaluate(() => '__grexalEarlyStream' in window)).resolves.toBe(true);
    await expect(user.locator('.reason').textContent()).resolves.toBe('Log in to Example, then press Done.');
    const canvas = user.locator('#screen canvas');
    await canvas.waitFor();
    const desktop = await desktopFor();
    await canvas.click({ position: { x: 20, y: 20 } });
    await received(desktop, 5);
    await user.keyboard.type('a');
    await received(desktop, 4);
    // A real paste (what a password manager's copy then Ctrl+V gives) and typed text with Enter.
    await user.locator('#paste').evaluate((box) => {
      const data = new DataTransfer();
      data.setData('text/plain', 'pa55word');
      box.dispatchEvent(
        new ClipboardEvent('paste', { clipboardData: data, bubbles: true, cancelable: true }),
      );
    });
    await received(desktop, 6, 'pa55word');
    await user.locator('#paste').fill('typed');
    await user.locator('#paste').press('Enter');
    await received(desktop, 6, 'typed');
    await expect(user.locator('#paste').inputValue()).resolves.toBe('');

    const watcher = await openPage(link);
    const watched = await desktopFor([desktop]);
    await watcher.locator('#screen canvas').click({ position: { x: 30, y: 30 } });
    await watcher.keyboard.type('b');
    // The watcher's own update requests arrive after its input would have: input then is known dropped.
    const before = watched.messages.length;
    await new Promise<void>((resolve) => {
      const on = (m: { type: number }): void => {
        if (m.type !== 3 || watched.messages.length <= before) return;
        watched.off('message', on);
        resolve();
      };
      watched.on('message', on);
    });
    expect(watched.messages.filter((m) => [4, 5, 6].includes(m.type))).toEqual([]);
    await watcher.close();
    await user.close();
    expect(cspViolations).toEqual([]);
  });

  it('gets its first frame asked for ahead: a spare sends noVNC’s own first requests, which the page then sends', async () => {
    const { link } = await setup();
    const size = Buffer.alloc(4);
    size.writeUInt16BE(vnc.width, 0);
    size.writeUInt16BE(vnc.height, 2);
    const ahead = firstRequests(size);
    const askedAhead = (c: RfbClientConnection): boolean =>
      Buffer.concat(c.messages.slice(0, 3).map((m) => m.bytes)).equals(ahead);
    // Before any page: the takeover's spare asked for the first frame as soon as it could be shown.
    await expect.poll(() => vnc.connections.some((c) => c.messages.length === 3 && askedAhead(c))).toBe(true);
    const page = await openPage(link);
    const desktop = await desktopFor();
    // The page's connection is that spare: its own identical requests were checked and not
    // forwarded (a page asking for anything else is disconnected, and would be on another one).
    expect(askedAhead(desktop)).toBe(true);
    expect(desktop.messages.filter((m) => m.type === 0 || m.type === 2)).toHaveLength(2);
    await page.locator('#screen canvas').click({ position: { x: 10, y: 10 } });
    await received(desktop, 5);
    expect(desktop.socket.destroyed).toBe(false);
    await expect(page.locator('#status').textContent()).resolves.toBe('Connected');
    await page.close();
  });

  it('reports its first frame drawn to the runner, once per viewer, on its own clock', async () => {
    const { link, id } = await setup();
    timings.length = 0;
    const page = await browser.newPage({ viewport: { width: 800, height: 600 } });
    // Every draw onto the page's visible canvas, and whether what it drew held the desktop's
    // pattern (the fake desktop's frame) or nothing yet (a resize's blank screen).
    await page.addInitScript(() => {
      const draws: Array<{ at: number; painted: boolean }> = [];
      (window as unknown as { __draws: typeof draws }).__draws = draws;
      const native = CanvasRenderingContext2D.prototype.drawImage;
      CanvasRenderingContext2D.prototype.drawImage = function (
        this: CanvasRenderingContext2D,
        ...args: unknown[]
      ) {
        (native as (...a: unknown[]) => void).apply(this, args);
        const source = args[0];
        if (!(source instanceof HTMLCanvasElement) || !this.canvas.isConnected) return;
        const pixels = source.getContext('2d')!.getImageData(0, 0, source.width, source.height).data;
        draws.push({ at: performance.now(), painted: pixels.some((v, i) => i % 4 !== 3 && v !== 0) });
      } as typeof native;
    });
    await page.goto(link);
    await expect.poll(() => timings.length).toBe(1);
    const [report] = timings;
    const seen = await page.evaluate(() => ({
      timeOrigin: performance.timeOrigin,
      draws: (window as unknown as { __draws: Array<{ at: number; painted: boolean }> }).__draws,
    }));
    expect(report).toMatchObject({ takeoverId: id, timeOrigin: seen.timeOrigin });
    expect(report!.connectMs).toBeGreaterThan(0);
    // The reported time is the first draw that held the desktop's pixels, not a blank one before it.
    const first = seen.draws.findIndex((d) => d.painted);
    expect(first).toBeGreaterThanOrEqual(0);
    expect(report!.firstFrameMs).toBeGreaterThanOrEqual(seen.draws[first]!.at);
    expect(seen.draws[first + 1]?.at ?? Number.POSITIVE_INFINITY).toBeGreaterThan(report!.firstFrameMs);
    expect(report!.firstFrameMs).toBeGreaterThanOrEqual(report!.connectMs);
    // The same tab again (its viewer key kept in sessionStorage): counted already.
    await page.reload();
    await page.getByText('Connected', { exact: true }).waitFor();
    await page.waitForTimeout(1500);
    expect(timings).toHaveLength(1);
    await page.close();
  });

  it('runs noVNC’s Safari scrollbar workaround (a forced layout each time it scales) in Safari only', async () => {
    const { link } = await setup();
    // The workaround sets the screen's overflow to hidden, then reads its size (a layout).
    const countWorkaround = (): void => {
      const native = Element.prototype.getBoundingClientRect;
      (window as unknown as { __forced: number }).__forced = 0;
      Element.prototype.getBoundingClientRect = function (this: Element) {
        if (this instanceof HTMLElement && this.style.overflow === 'hidden')
          (window as unknown as { __forced: number }).__forced++;
        return native.call(this);
      };
    };
    const forcedIn = async (userAgent?: string): Promise<number> => {
      const page = await browser.newPage({
        viewport: { width: 800, height: 600 },
        ...(userAgent ? { userAgent } : {}),
      });
      await page.addInitScript(countWorkaround);
      await page.goto(link);
      await page.getByText('Connected', { exact: true }).waitFor();
      await desktopFor();
      const forced = await page.evaluate(() => (window as unknown as { __forced: number }).__forced);
      await page.close();
      return forced;
    };
    expect(await forcedIn()).toBe(0);
    const safari =
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15';
    expect(await forcedIn(safari)).toBeGreaterThan(0);
  });

  it('reconnects after the stream drops and keeps control', async () => {
    const { link } = await setup();
    const page = await openPage(link);
    const first = await desktopFor();
    first.socket.destroy();
    await page.getByText(/reconnecting/).waitFor();
    await page.getByText('Connected', { exact: true }).waitFor();
    const again = await desktopFor([first]);
    await page.locator('#screen canvas').click({ position: { x: 10, y: 10 } });
    await received(again, 5);
    await page.close();
  });

  it('Done resolves the agent’s call; the link then answers 410', async () => {
    const { link, done } = await setup();
    const page = await openPage(link);
    await page.getByRole('button', { name: 'Done' }).click();
    await expect(done).resolves.toBe('completed');
    // The end screen is drawn after the answer reaches the page: wait for it (bounded), never read at once.
    await page.locator('#end h2', { hasText: /^Done$/ }).waitFor();
    const reload = await page.reload();
    expect(reload?.status()).toBe(410);
    await page.close();
  });

  it('Cancel rejects the agent’s call with takeover_cancelled', async () => {
    const { link, done } = await setup();
    const page = await openPage(link);
    await page.getByRole('button', { name: 'Cancel' }).click();
    await expect(done).rejects.toMatchObject({ code: 'takeover_cancelled' });
    await page.locator('#end h2', { hasText: 'Cancelled' }).waitFor();
    await page.close();
  });

  it('tells each viewer whether it has control and why not, with a latency figure', async () => {
    const { link } = await setup();
    const user = await openPage(link);
    await user.locator('#control', { hasText: 'You have control' }).waitFor();
    await user.locator('#latency', { hasText: /^\d+ ms$/ }).waitFor();
    const watcher = await openPage(link);
    await watcher.locator('#control', { hasText: 'View only' }).waitFor();
    await watcher.locator('#control-why', { hasText: /before you and has the keyboard/ }).waitFor();
    await shot(watcher, 'view-only-800x600');
    await watcher.close();
    await user.close();
  });

  it('Alt+Shift+D presses Done from the keyboard, without the D reaching the desktop', async () => {
    const { link, done } = await setup();
    const page = await openPage(link);
    await page.locator('#screen canvas').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('Alt+Shift+KeyD');
    await expect(done).resolves.toBe('completed');
    // The modifiers go down and up in the desktop as they are pressed; the D itself never does.
    const keysyms = (await desktopFor()).messages
      .filter((m) => m.type === 4)
      .map((m) => m.bytes.readUInt32BE(4));
    expect(keysyms.filter((k) => k === 0x44 || k === 0x64)).toEqual([]);
    expect(keysyms.length).toBeGreaterThan(0);
    await page.close();
  });

  it('shows its own end screen when the condition completes it and when the sandbox goes', async () => {
    const byCondition = await setup({ until: true });
    const page = await openPage(byCondition.link);
    await page.locator('#end h2', { hasText: 'Signed in — handing back' }).waitFor();
    await expect(byCondition.done).resolves.toBe('completed');
    await shot(page, 'signed-in-800x600');
    await page.close();
    broker.close();
    await server.close();
    await vnc.close();

    await setup();
    const gone = await openPage(broker.linkFor(broker.openFor('sb-page')!.id)!);
    broker.cancelAllFor('sb-page');
    await gone.locator('#end h2', { hasText: 'The sandbox is gone' }).waitFor();
    await gone.close();
  });

  it('fits a desktop and a phone window (screenshots in TAKEOVER_SHOTS)', async () => {
    const { link } = await setup({ width: 1280, height: 800 });
    for (const viewport of [
      { width: 1280, height: 800 },
      { width: 390, height: 844 },
    ]) {
      const page = await openPage(link, viewport);
      await page.locator('#control', { hasText: 'You have control' }).waitFor();
      await shot(page, `connected-${viewport.width}x${viewport.height}`);
      const done = await page.locator('#done').boundingBox();
      const screen = await page.locator('#screen').boundingBox();
      // Done on screen, and the desktop gets most of the window.
      expect(done!.x + done!.width).toBeLessThanOrEqual(viewport.width);
      expect(screen!.height / viewport.height).toBeGreaterThan(0.6);
      await page.close();
    }
  });
});

/** Saves a screenshot when TAKEOVER_SHOTS names a directory (to look at; never asserted on). */
async function shot(page: Page, name: string): Promise<void> {
  const into = process.env['TAKEOVER_SHOTS'];
  if (into) await page.screenshot({ path: join(into, `${name}.png`) });
}
