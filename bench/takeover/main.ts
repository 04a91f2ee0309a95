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
 * With --ahead-ab and one image, the two sides are the same image served by two takeover servers
 * of this runner: one with its first-frame work off (`firstFrameAhead: false`: no spare VNC
 * connection, no inline boot script, as before that work) and one with it on, alternated likewise.
 *
 * With --baseline ROOT:IMAGE the first side is another checkout's runner (ROOT, e.g. a worktree
 * of an older commit with its node_modules and `npm run build` done; its runner/ bundled into
 * ROOT/.bench-cache so that it serves ROOT's own dist/takeover page) with IMAGE, its desktop image
 * built by bench/takeover/build-desktop.ts; the second is this runner with the first of --images.
 * Both runners run in this process; the same browser and probe measure both.
 *
 *   node scripts/run-ts.mjs bench/takeover/main.ts [--rounds 10] [--images a,b] [--ahead-ab]
 *     [--baseline ROOT:IMAGE] [--update-ahead-ab] [--probe-wait-ab] [--settle-ms 0] [--browser-worker]
 *     [--split-cpus] [--plain-tab]
 *
 * With --plain-tab the link is opened as a user's browser opens it, in a tab no tool attaches to
 * (bench/lib/plain-tab.ts), and the first frame is the page's own report to the runner. Only
 * `event`, `tab` (until the navigation starts), `handshake` (navigation → noVNC connected) and
 * `total` are known then. Not with --baseline (an older runner has no timing route).
 *
 * With --update-ahead-ab, as --ahead-ab but side 0 only has its spares ask nothing ahead
 * (`firstUpdateAhead: false`); both servers share the broker, so side 0's takeovers also get
 * side 1's spares, which ask ahead (one encoded frame per takeover, taken by nobody).
 *
 * With --probe-wait-ab, both sides are this runner with the first of --images; side 0 waits for
 * the first frame with Playwright's waitForFunction (as the bench did until it listened for the
 * probe's console line, the default, side 1; viewer-probe.ts, ProbeWait): what the bench's own
 * waiting costs the page.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { type BrowserContext, chromium } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../examples/scripted-user.ts';
import { Runner } from '../../runner/index.ts';
import { startTakeoverServer } from '../../runner/takeover/index.ts';
import { openPlainTabs, type PlainTabs, plainStamps, plainWindowSize } from '../lib/plain-tab.ts';
import { requireImages } from '../lib/require-images.ts';
import { median, percentile } from '../lib/stats.ts';
import {
  askingAgent,
  linkParts,
  startTakeoverSandbox,
  type TakeoverSandbox,
} from '../lib/takeover-sandbox.ts';
import {
  addViewerProbeToContext,
  type ProbeWait,
  type ViewerStamps,
  watchFirstDrawn,
} from '../lib/viewer-probe.ts';
import { startViewerWorker } from '../lib/viewer-worker.ts';
import { cleanRoomSink, fmt, PHASES, type Phase, printTimeline, type Round } from './timeline.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    images: { type: 'string', default: 'grexal/desktop-x11vnc,grexal/desktop' },
    'ahead-ab': { type: 'boolean', default: false },
    'update-ahead-ab': { type: 'boolean', default: false },
    baseline: { type: 'string' },
    'probe-wait-ab': { type: 'boolean', default: false },
    // A pause after each round: work a takeover leaves for later (the next spare's first frame,
    // 500 ms after the viewer's) then lands in no other round, as between a user's takeovers.
    'settle-ms': { type: 'string', default: '0' },
    // The bench's browser driven from a worker thread (bench/lib/viewer-worker.ts), not from the
    // runner's event loop: the probe and what counts as drawn are the same.
    'browser-worker': { type: 'boolean', default: false },
    'split-cpus': { type: 'boolean', default: false },
    'plain-tab': { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const plain = values['plain-tab'];
if (plain && (values.baseline || values['browser-worker']))
  throw new Error('--plain-tab times the page by its own report: not with --baseline or --browser-worker');
const settleMs = Number(values['settle-ms']);
// --update-ahead-ab: as --ahead-ab, but only the first update asked ahead is off on side 0
// (`firstUpdateAhead: false`: spares, boot script and pipelined handshake stay).
const updateAheadAb = values['update-ahead-ab'];
const aheadAb = values['ahead-ab'] || updateAheadAb;
const [baseRoot, baseImage] = values.baseline?.split(':') ?? [];
// --probe-wait-ab: the same runner and image on both sides; only how the bench waits for the
// first frame differs (viewer-probe.ts ProbeWait): what the measurement itself costs the page.
const probeWaitAb = values['probe-wait-ab'];
const waits: ProbeWait[] = probeWaitAb ? ['playwright', 'console'] : ['console', 'console'];
const images =
  aheadAb || probeWaitAb
    ? [values.images.split(',')[0]!, values.images.split(',')[0]!]
    : baseRoot
      ? [baseImage!, values.images.split(',')[0]!]
      : values.images.split(',');
/** What each side is called in the output. */
const labels = probeWaitAb
  ? ['wait: playwright', 'wait: console']
  : updateAheadAb
    ? ['update ahead off', 'update ahead on']
    : aheadAb
      ? ['ahead off', 'ahead on']
      : baseRoot
        ? [`baseline ${baseImage}`, 'this runner']
        : images;
// The page's header and footer take ~113 px: the desktop area is then about 1280×800, which a
// server that follows the viewer's size (Xtigervnc) takes, so both stacks stream the same pixels.
const VIEWPORT = { width: 1280, height: 913 };

const AGENT = askingAgent(rounds);

function cpuNow(sandbox: TakeoverSandbox): Record<string, number> {
  const { user, system } = process.cpuUsage();
  return { ...sandbox.cpuMs(), process: (user + system) / 1000 };
}

/**
 * Completes a sandbox's previous takeover only when its next round starts: its agent then asks at
 * once, so the round times a fresh request even while the other sandbox's rounds ran in between.
 */
function completeLink(runner: Runner, link: string): void {
  const { id, token } = linkParts(link);
  runner.takeovers.complete(id, token);
}

async function round(
  context: BrowserContext,
  sandbox: TakeoverSandbox,
  i: number,
  side: Side,
): Promise<Round> {
  const origin = side.origin;
  const cpu0 = cpuNow(sandbox);
  if (i > 0) completeLink(side.runner, await sandbox.link(i - 1));
  const link = onOrigin(await sandbox.link(i), origin);
  const seen = Date.now();
  const cpu1 = cpuNow(sandbox);
  let opened: number;
  let loaded: number;
  let s: ViewerStamps;
  let cpu2: ReturnType<typeof cpuNow>;
  let navigated = Number.NaN;
  if (viewerWorker) {
    ({ opened, loaded, stamps: s } = await viewerWorker.visit(link));
    cpu2 = cpuNow(sandbox);
  } else if (plainTabs) {
    const reported = plainTabs.reported(linkParts(link).id);
    opened = Date.now();
    const { targetId } = await plainTabs.open(link);
    const timing = await reported;
    // The report comes when the page is idle after its frame: this window is a little longer.
    cpu2 = cpuNow(sandbox);
    await plainTabs.close(targetId);
    loaded = Number.NaN;
    s = plainStamps(timing);
    navigated = timing.timeOrigin;
  } else {
    const page = await context.newPage();
    opened = Date.now();
    const drawn = watchFirstDrawn(page, side.wait);
    await page.goto(link);
    loaded = Date.now();
    s = await drawn();
    cpu2 = cpuNow(sandbox);
    await page.close();
  }
  const asked = sandbox.asked[i]!;
  return {
    event: seen - asked,
    tab: (plainTabs ? navigated : opened) - seen,
    load: loaded - opened,
    // The page's script creates the WebSocket after `load` may already have fired: from the tab.
    // Tab opened → noVNC's first byte out: the page's script running with the greeting in hand.
    novnc: s.firstSent - opened,
    wsOpen: s.wsOpen - Math.max(s.wsCreated, opened),
    // A plain tab's: navigation start → noVNC connected (the page's own figure).
    handshake: plainTabs ? s.requested - navigated : s.requested - s.wsOpen,
    firstRect: s.firstRect - s.requested,
    drawn: s.firstDrawn - s.firstRect,
    total: s.firstDrawn - asked,
    // Epoch ms of each of the user's milestones, to line them up with the clean room's steps.
    // CPU ms by the sandbox's containers and this process (both runners, the bench): from the
    // previous takeover's completion to the link (`pre.`), and from the link to the first frame.
    cpu: Object.fromEntries(
      Object.keys(cpu2).flatMap((k) => [
        [`pre.${k}`, cpu1[k]! - (cpu0[k] ?? 0)],
        [k, cpu2[k]! - (cpu1[k] ?? 0)],
      ]),
    ),
    at: { asked, seen, opened, loaded, wsOpen: s.wsOpen, requested: s.requested, firstRect: s.firstRect },
  };
}

/** The link on another of this runner's takeover servers (same broker, same token). */
function onOrigin(link: string, origin: string | undefined): string {
  if (!origin) return link;
  const url = new URL(link);
  return `${origin}${url.pathname}${url.search}`;
}

/** A chromium that runs on `cpus` only (taskset), for Playwright's executablePath; in `dir`. */
function pinnedChromium(dir: string, cpus: string): string {
  const path = join(dir, 'chromium');
  writeFileSync(path, `#!/bin/sh\nexec taskset -c ${cpus} /usr/bin/chromium "$@"\n`, { mode: 0o755 });
  return path;
}

/** Another checkout's runner, bundled from its sources into that checkout (its page, its dist/). */
async function baselineModule(root: string): Promise<{
  Runner: typeof Runner;
  startTakeoverServer: typeof startTakeoverServer;
}> {
  const dir = join(resolve(root), '.bench-cache');
  mkdirSync(dir, { recursive: true });
  const entry = join(dir, 'entry.ts');
  writeFileSync(
    entry,
    "export { Runner } from '../runner/index.ts';\nexport { startTakeoverServer } from '../runner/takeover/index.ts';\n",
  );
  const outfile = join(dir, 'baseline.mjs');
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    logLevel: 'warning',
  });
  return import(pathToFileURL(outfile).href);
}

interface Side {
  runner: Runner;
  /** Another takeover server's origin for this side's links, or undefined: the runner's own. */
  origin: string | undefined;
  wait: ProbeWait;
}

const rooms: Record<string, number>[] = [];
await requireImages(images);
const runner = await Runner.start({ logger: cleanRoomSink(rooms) });
let plainTabs: PlainTabs | undefined;
const server = await startTakeoverServer({
  broker: runner.takeovers,
  onViewerTiming: (t) => plainTabs?.onTiming(t),
});
// --ahead-ab: side 0 on a server without the first-frame work; side 1 on the default one.
const offServer = aheadAb
  ? await startTakeoverServer({
      broker: runner.takeovers,
      onViewerTiming: (t) => plainTabs?.onTiming(t),
      ...(updateAheadAb ? { firstUpdateAhead: false } : { firstFrameAhead: false }),
    })
  : undefined;
const base = baseRoot ? await baselineModule(baseRoot) : undefined;
const baseRunner = base ? await base.Runner.start({ logger: cleanRoomSink([]) }) : undefined;
const baseServer =
  base && baseRunner ? await base.startTakeoverServer({ broker: baseRunner.takeovers }) : undefined;
const sides: Side[] = [
  { runner: baseRunner ?? runner, origin: offServer?.url ?? baseServer?.url, wait: waits[0]! },
  { runner, origin: undefined, wait: waits[1]! },
];
const pinDir = values['split-cpus'] ? mkdtempSync(join(tmpdir(), 'bench-chromium-')) : undefined;
// --split-cpus: the user's browser on CPU 0, every sandbox container on CPU 1, as when the user's
// browser is on the user's own machine (the default shares both cores, a worst case).
const browser = await chromium.launch({
  executablePath: pinDir ? pinnedChromium(pinDir, '0') : '/usr/bin/chromium',
  args: plain ? [...CHROMIUM_FLAGS, plainWindowSize(VIEWPORT)] : CHROMIUM_FLAGS,
});
plainTabs = plain ? await openPlainTabs(browser) : undefined;
// One window, a new tab per link: as in the user's own browser.
const context = await browser.newContext({ viewport: VIEWPORT });
await addViewerProbeToContext(context);
const viewerWorker = values['browser-worker'] ? await startViewerWorker(CHROMIUM_FLAGS, VIEWPORT) : undefined;
try {
  const sandboxes: TakeoverSandbox[] = [];
  for (const [k, image] of images.entries())
    sandboxes.push(
      await startTakeoverSandbox(
        sides[k]?.runner ?? runner,
        image,
        AGENT,
        values['split-cpus'] ? '1' : undefined,
      ),
    );
  const results = sandboxes.map(() => [] as Round[]);
  // Warm-up: round 0 of each, not counted; then the idle desktop's memory.
  for (const [k, sb] of sandboxes.entries()) await round(context, sb, 0, sides[k]!);
  for (const [k, sb] of sandboxes.entries())
    console.log(`${labels[k]}: idle memory ${(await sb.memoryMiB()).toFixed(0)} MiB`);
  console.log(`ms${' '.repeat(27)}${PHASES.map((p) => p.padStart(10)).join('')}`);
  for (let i = 1; i <= rounds; i++) {
    const order = i % 2 ? sandboxes.map((_, k) => k) : sandboxes.map((_, k) => k).reverse();
    for (const k of order) {
      const r = await round(context, sandboxes[k]!, i, sides[k]!);
      results[k]!.push(r);
      if (settleMs > 0) await new Promise((resolve) => setTimeout(resolve, settleMs));
      console.log(
        `  ${String(i).padStart(2)} ${labels[k]!.padEnd(24)}${PHASES.map((p) => fmt(r[p]).padStart(10)).join('')}`,
      );
    }
  }
  for (const [k, sb] of sandboxes.entries()) completeLink(sides[k]!.runner, await sb.link(rounds));
  await Promise.all(sandboxes.map((sb) => sb.exited));
  for (const [k, image] of labels.entries()) {
    const rs = results[k]!;
    const p = (phase: Phase, q: number) =>
      fmt(
        percentile(
          rs.map((r) => r[phase]),
          q,
        ),
      );
    console.log(`${image}: p50 ${PHASES.map((ph) => `${ph} ${p(ph, 50).trim()}`).join(', ')}`);
    const cpuKeys = Object.keys(rs[0]?.cpu ?? {});
    console.log(
      `${image}: CPU ms p50 ${cpuKeys
        .filter((c) => !c.includes(':'))
        .map((c) => `${c} ${median(rs.map((r) => r.cpu[c]!)).toFixed(1)}`)
        .join(', ')}`,
    );
    // BENCH_CPU_BY_PROCESS: each process's share, summed over the rounds (10-ms ticks).
    const byProcess = cpuKeys.filter((c) => c.includes(':'));
    if (byProcess.length)
      console.log(
        `${image}: CPU ms summed over ${rs.length} rounds ${byProcess
          .map((c) => `${c} ${rs.reduce((sum, r) => sum + (r.cpu[c] ?? 0), 0).toFixed(0)}`)
          .join(', ')}`,
      );
    console.log(
      `${image}: request_takeover → first frame drawn p50 ${p('total', 50)}  p90 ${p('total', 90)}  max ${p('total', 100)} ms`,
    );
  }
  // Only this runner logs clean rooms into `rooms`: one side of it (the other is the baseline).
  if (baseRoot) printTimeline(results[1]!, rooms);
  if (images.length === 2) {
    const ratio = median(results[1]!.map((r, i) => r.total / results[0]![i]!.total));
    console.log(
      `median ratio ${labels[1]} / ${labels[0]}: ${ratio.toFixed(2)} (target: p50 ≤ 300 ms, p90 ≤ 400 ms)`,
    );
  }
} finally {
  await viewerWorker?.close();
  await browser.close();
  if (pinDir) rmSync(pinDir, { recursive: true, force: true });
  await server.close();
  await offServer?.close();
  await baseServer?.close();
  await baseRunner?.close();
  await runner.close();
}
