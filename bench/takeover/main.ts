/**
 * bench/takeover: time from the agent's ctx.request_takeover() to the first framebuffer drawn in
 * the takeover page's canvas, with the desktop already running, split into phases: the event, the
 * new tab, the page load, noVNC ready (tab → its first byte sent: the script runs and has the
 * greeting; overlaps the others), the WebSocket open, the RFB handshake (open → noVNC's first
 * FramebufferUpdateRequest), the first rectangle (request → first byte back) and drawn (→ noVNC's
 * first flip onto the visible canvas). The "user" is the host's Chromium (launched once, as a
 * person's browser would already be open); each round opens the link in a new tab, waits for the
 * first frame and closes the tab; the takeover is completed when that sandbox's next round starts.
 *
 * With two images (the default: grexal/desktop-x11vnc as the baseline, grexal/desktop) each has
 * its own sandbox, rounds alternate A B B A …, and the median of the per-pair ratios is printed;
 * the idle memory of each desktop sandbox is read before the first round.
 *
 *   node scripts/run-ts.mjs bench/takeover/main.ts [--rounds 10] [--images a,b]
 */
import { parseArgs } from 'node:util';
import { type BrowserContext, chromium } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../examples/scripted-user.ts';
import { Runner } from '../../runner/index.ts';
import { startTakeoverServer } from '../../runner/takeover/index.ts';
import { median, percentile } from '../lib/stats.ts';
import { startTakeoverSandbox, type TakeoverSandbox } from '../lib/takeover-sandbox.ts';
import { addViewerProbe, waitFirstDrawn } from '../lib/viewer-probe.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    images: { type: 'string', default: 'grexal/desktop-x11vnc,grexal/desktop' },
  },
});
const rounds = Number(values.rounds);
const images = values.images.split(',');
// The page's header and footer take ~113 px: the desktop area is then about 1280×800, which a
// server that follows the viewer's size (Xtigervnc) takes, so both stacks stream the same pixels.
const VIEWPORT = { width: 1280, height: 913 };

// The agent asks `rounds + 1` times (the first is a warm-up), printing when each call starts.
const AGENT = `
  import { ctx } from '/opt/grexal/ctx.mjs';
  for (let i = 0; i <= ${rounds}; i++) {
    console.log('asking ' + Date.now());
    await ctx.requestTakeover({ reason: 'bench ' + i, timeoutMs: 120000 });
  }
`;

const PHASES = [
  'event',
  'tab',
  'load',
  'novnc',
  'wsOpen',
  'handshake',
  'firstRect',
  'drawn',
  'total',
] as const;
type Phase = (typeof PHASES)[number];
type Round = Record<Phase, number>;

/**
 * Completes a sandbox's previous takeover only when its next round starts: its agent then asks at
 * once, so the round times a fresh request even while the other sandbox's rounds ran in between.
 */
function completeLink(link: string): void {
  const url = new URL(link);
  runner.takeovers.complete(url.pathname.split('/').pop()!, url.searchParams.get('token'));
}

async function round(context: BrowserContext, sandbox: TakeoverSandbox, i: number): Promise<Round> {
  if (i > 0) completeLink(await sandbox.link(i - 1));
  const link = await sandbox.link(i);
  const seen = Date.now();
  const page = await context.newPage();
  await addViewerProbe(page);
  const opened = Date.now();
  await page.goto(link);
  const loaded = Date.now();
  const s = await waitFirstDrawn(page);
  await page.close();
  const asked = sandbox.asked[i]!;
  return {
    event: seen - asked,
    tab: opened - seen,
    load: loaded - opened,
    // The page's script creates the WebSocket after `load` may already have fired: from the tab.
    // Tab opened → noVNC's first byte out: the page's script running with the greeting in hand.
    novnc: s.firstSent - opened,
    wsOpen: s.wsOpen - Math.max(s.wsCreated, opened),
    handshake: s.requested - s.wsOpen,
    firstRect: s.firstRect - s.requested,
    drawn: s.firstDrawn - s.firstRect,
    total: s.firstDrawn - asked,
  };
}

const fmt = (n: number): string => n.toFixed(1).padStart(6);

const runner = await Runner.start({});
const server = await startTakeoverServer({ broker: runner.takeovers });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
// One window, a new tab per link: as in the user's own browser.
const context = await browser.newContext({ viewport: VIEWPORT });
try {
  const sandboxes: TakeoverSandbox[] = [];
  for (const image of images) sandboxes.push(await startTakeoverSandbox(runner, image, AGENT));
  const results = sandboxes.map(() => [] as Round[]);
  // Warm-up: round 0 of each, not counted; then the idle desktop's memory.
  for (const sb of sandboxes) await round(context, sb, 0);
  for (const sb of sandboxes)
    console.log(`${sb.image}: idle memory ${(await sb.memoryMiB()).toFixed(0)} MiB`);
  console.log(`ms${' '.repeat(27)}${PHASES.map((p) => p.padStart(10)).join('')}`);
  for (let i = 1; i <= rounds; i++) {
    const order = i % 2 ? sandboxes.map((_, k) => k) : sandboxes.map((_, k) => k).reverse();
    for (const k of order) {
      const r = await round(context, sandboxes[k]!, i);
      results[k]!.push(r);
      console.log(
        `  ${String(i).padStart(2)} ${images[k]!.padEnd(24)}${PHASES.map((p) => fmt(r[p]).padStart(10)).join('')}`,
      );
    }
  }
  for (const sb of sandboxes) completeLink(await sb.link(rounds));
  await Promise.all(sandboxes.map((sb) => sb.exited));
  for (const [k, image] of images.entries()) {
    const rs = results[k]!;
    const p = (phase: Phase, q: number) =>
      fmt(
        percentile(
          rs.map((r) => r[phase]),
          q,
        ),
      );
    console.log(`${image}: p50 ${PHASES.map((ph) => `${ph} ${p(ph, 50).trim()}`).join(', ')}`);
    console.log(
      `${image}: request_takeover → first frame drawn p50 ${p('total', 50)}  p90 ${p('total', 90)}  max ${p('total', 100)} ms`,
    );
  }
  if (images.length === 2) {
    const ratio = median(results[1]!.map((r, i) => r.total / results[0]![i]!.total));
    console.log(
      `median ratio ${images[1]} / ${images[0]}: ${ratio.toFixed(2)} (target: p50 ≤ 300 ms, p90 ≤ 400 ms)`,
    );
  }
} finally {
  await browser.close();
  await server.close();
  await runner.close();
}
