/**
 * bench/input: how typing and scrolling feel through a takeover.
 *   (a) keystroke → echo: a key pressed in the user's takeover page (through noVNC, the bridge and
 *       the VNC server) until the changed frame is drawn in the page's canvas, with a text field
 *       focused in the sandbox's Chromium (timed in the user's page: its keydown → noVNC's flip of
 *       a frame that differs);
 *   (b) scrolling: frames drawn per second in the user's page while the sandbox's Chromium
 *       scrolls a long page (started and stopped by a key typed through the stream, so only the
 *       measured sandbox scrolls).
 * The agent in each sandbox drives its own Chromium over CDP (playwright-core, as an agent
 * would) and asks for two takeovers: one for typing, one for scrolling.
 *
 * With two images (default: grexal/desktop-x11vnc as the baseline, grexal/desktop) keys alternate
 * A B B A … between the two pages and scroll windows likewise; medians of per-pair ratios printed.
 *
 * With --ahead-ab and one image, the two sides are that image served by two takeover servers, the
 * runner's first-frame work off and on (as bench/takeover --ahead-ab): the stream after the first
 * frame must not change.
 *
 * --update-ahead-ab: side 0's spares ask for no first frame ahead (`firstUpdateAhead: false`).
 *
 *   node scripts/run-ts.mjs bench/input/main.ts [--keys 40] [--windows 4] [--window-ms 3000] [--images a,b] [--ahead-ab]
 *     [--update-ahead-ab]
 */
import { parseArgs } from 'node:util';
import { type Browser, chromium, type Page } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../examples/scripted-user.ts';
import { Runner } from '../../runner/index.ts';
import { startTakeoverServer } from '../../runner/takeover/index.ts';
import { requireImages } from '../lib/require-images.ts';
import { median, percentile } from '../lib/stats.ts';
import { startTakeoverSandbox, type TakeoverSandbox } from '../lib/takeover-sandbox.ts';
import {
  addViewerProbe,
  clickDesktop,
  desktopSize,
  framesPerSecond,
  keyToEcho,
  waitFirstDrawn,
} from '../lib/viewer-probe.ts';

const { values } = parseArgs({
  options: {
    keys: { type: 'string', default: '40' },
    windows: { type: 'string', default: '4' },
    'window-ms': { type: 'string', default: '3000' },
    images: { type: 'string', default: 'grexal/desktop-x11vnc,grexal/desktop' },
    'ahead-ab': { type: 'boolean', default: false },
    'update-ahead-ab': { type: 'boolean', default: false },
  },
});
const KEYS = Number(values.keys);
const WINDOWS = Number(values.windows);
const WINDOW_MS = Number(values['window-ms']);
// --update-ahead-ab: as --ahead-ab, but only the first update asked ahead is off on side 0
// (`firstUpdateAhead: false`: spares, boot script and pipelined handshake stay).
const updateAheadAb = values['update-ahead-ab'];
const aheadAb = values['ahead-ab'] || updateAheadAb;
const imageList = values.images.split(',');
/** The sides' names: the images, or with --ahead-ab the first image's "ahead off" and "ahead on". */
const images = updateAheadAb
  ? ['update ahead off', 'update ahead on']
  : aheadAb
    ? ['ahead off', 'ahead on']
    : imageList;
const imageOf = (k: number): string => (aheadAb ? imageList[0]! : imageList[k]!);
// The page's header and footer take ~113 px: the desktop area is then about 1280×800, which a
// server that follows the viewer's size (Xtigervnc) takes, so both stacks stream the same pixels.
const VIEWPORT = { width: 1280, height: 913 };

// A wide monospace field with no caret (a blinking caret would be an "echo" of nothing), then a
// long page that scrolls by 6 px per animation frame between an "s" and an "x" typed into it.
const TEXT_FIELD = `<body style="margin:0"><textarea id="t" spellcheck="false" style="width:1200px;height:700px;font:36px monospace;caret-color:transparent;outline:none;border:0;resize:none"></textarea></body>`;
const LONG_PAGE = `<body style="font:18px sans-serif;margin:20px"><script>
  for (let i = 0; i < 2000; i++) {
    const p = document.createElement('p');
    p.textContent = 'Line ' + i + ': the quick brown fox jumps over the lazy dog, ' + 'again and '.repeat(i % 7) + 'done.';
    document.body.append(p);
  }
  let on = false;
  const step = () => { if (on) { scrollBy(0, 6); requestAnimationFrame(step); } };
  addEventListener('keydown', (e) => { if (e.key === 's' && !on) { on = true; step(); } if (e.key === 'x') on = false; });
</script></body>`;
const AGENT = `
  import { chromium } from 'playwright-core';
  import { ctx } from '/opt/grexal/ctx.mjs';
  const browser = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
  const context = browser.contexts()[0];
  const page = context.pages()[0] ?? (await context.newPage());
  // A navigation, as an agent opening a login page does: Chromium moves its focus from the
  // omnibox to the page (setContent on about:blank would leave keys going to the omnibox).
  await page.goto('data:text/html;base64,' + ${JSON.stringify(Buffer.from(TEXT_FIELD).toString('base64'))});
  await page.focus('#t');
  await ctx.requestTakeover({ reason: 'input bench: typing', timeoutMs: 600000 });
  // The takeover's clean room cut this connection (docs/browser.md, the reconnect contract).
  await ctx.waitForBrowser();
  const again = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
  const next = again.contexts()[0].pages()[0] ?? (await again.contexts()[0].newPage());
  await next.goto('data:text/html;base64,' + ${JSON.stringify(Buffer.from(LONG_PAGE).toString('base64'))});
  await ctx.requestTakeover({ reason: 'input bench: scrolling', timeoutMs: 600000 });
  void page;
`;

async function openViewer(browser: Browser, sandbox: TakeoverSandbox, n: number): Promise<Page> {
  // A window (context) each: both pages stay visible and animating, as a tab in the background would not.
  const context = await browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  await addViewerProbe(page);
  const link = new URL(await sandbox.link(n));
  const origin = origins[sandboxes.indexOf(sandbox)];
  await page.goto(origin ? `${origin}${link.pathname}${link.search}` : link.href);
  await waitFirstDrawn(page);
  // Chromium leaves its keyboard focus in the omnibox after an agent's navigation: the user clicks
  // into the page first (the text field fills the top of the screen).
  await clickDesktop(page, 500, 400);
  page.on('dialog', (dialog) => void dialog.accept());
  return page;
}

/** Runs `measure` for each side in A B B A … order, `count` times each. */
async function alternated(
  count: number,
  measure: (k: number, i: number) => Promise<number>,
): Promise<number[][]> {
  const out = images.map(() => [] as number[]);
  for (let i = 0; i < count; i++) {
    const order = i % 2 ? images.map((_, k) => k).reverse() : images.map((_, k) => k);
    for (const k of order) out[k]!.push(await measure(k, i));
  }
  return out;
}

function report(what: string, samples: number[][], unit: string, qs: number[]): void {
  for (const [k, image] of images.entries()) {
    const s = samples[k]!;
    console.log(
      `${image}: ${what} ${qs.map((q) => `p${q} ${percentile(s, q).toFixed(1)}`).join('  ')} ${unit} (n=${s.length})`,
    );
  }
  if (images.length === 2) {
    const ratio = median(samples[1]!.map((b, i) => b / samples[0]![i]!));
    console.log(`${what}: median ratio ${images[1]} / ${images[0]} ${ratio.toFixed(2)}`);
  }
}

await requireImages(aheadAb ? [imageList[0]!] : imageList);
const runner = await Runner.start({});
const server = await startTakeoverServer({ broker: runner.takeovers });
// --ahead-ab: side 0 on a server without the first-frame work; side 1 on the default one.
const offServer = aheadAb
  ? await startTakeoverServer({
      broker: runner.takeovers,
      ...(updateAheadAb ? { firstUpdateAhead: false } : { firstFrameAhead: false }),
    })
  : undefined;
const origins = [offServer?.url, undefined];
const sandboxes: TakeoverSandbox[] = [];
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
try {
  for (const k of images.keys()) sandboxes.push(await startTakeoverSandbox(runner, imageOf(k), AGENT));
  let pages = await Promise.all(sandboxes.map((sb) => openViewer(browser, sb, 0)));
  for (const [k, page] of pages.entries()) console.log(`${images[k]}: desktop ${await desktopSize(page)}`);
  // Warm-up key each, not counted.
  for (const page of pages) await keyToEcho(page, 'a');
  const letters = 'bcdefghijklmnopqrstuvwxyz';
  const echoes = await alternated(KEYS, (k, i) => keyToEcho(pages[k]!, letters[i % letters.length]!));
  report('keystroke → echo drawn', echoes, 'ms', [50, 90, 99]);
  for (const page of pages) await page.click('#done');
  for (const page of pages) await page.context().close();

  pages = await Promise.all(sandboxes.map((sb) => openViewer(browser, sb, 1)));
  const fps = await alternated(WINDOWS, async (k) => {
    const page = pages[k]!;
    await page.keyboard.press('s');
    // Half a second for the scroll to get going, then the window counted.
    await page.waitForTimeout(500);
    const rate = await framesPerSecond(page, WINDOW_MS);
    // BENCH_SHOTS=<dir>: what the user saw at the end of each window, to check the page scrolled.
    const shots = process.env['BENCH_SHOTS'];
    if (shots) await page.screenshot({ path: `${shots}/scroll-${k}.png` });
    await page.keyboard.press('x');
    await page.waitForTimeout(300);
    return rate;
  });
  report('scrolling frames/s', fps, 'frames/s', [50]);
  for (const page of pages) await page.click('#done');
  await Promise.all(sandboxes.map((sb) => sb.exited));
} finally {
  await browser.close();
  await server.close();
  await offServer?.close();
  await runner.close();
}
