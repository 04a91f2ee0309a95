/**
 * bench/pool --part desktop: `POST /v1/sandboxes` of a desktop sandbox whose agent calls
 * `request_takeover` at once → the link's page, opened in a real browser (the host's Chromium, a
 * new tab per link as in the user's own browser), draws its first frame (bench/lib/viewer-probe.ts,
 * the measure bench/takeover uses). Warm (a desktop pool's entry: display, window manager, Chromium
 * and VNC already up) against cold (the same request, same API, naming a pool that matches
 * nothing), alternated. Before every sample the pools are full again, so only a warm sample's own
 * refill (the pool replacing the entry it claimed, as for any claim) runs under it; before every
 * warm one, the idle entries' memory is read (agent and desktop). With `--baseline DIR` the same
 * sides of a second `grexal serve` (another build) are rotated with this build's in every round.
 */
import Docker from 'dockerode';
import { type BrowserContext, chromium } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../examples/scripted-user.ts';
import type { RunnerClient } from '../../runner/client/index.ts';
import { LABEL_SANDBOX } from '../../runner/runtime/runtime.ts';
import type { ViewerTiming } from '../../runner/takeover/index.ts';
import { openPlainTabs, type PlainTabs, plainStamps, plainWindowSize } from '../lib/plain-tab.ts';
import { median, ms, percentile } from '../lib/stats.ts';
import { addViewerProbeToContext, type ViewerStamps, watchFirstDrawn } from '../lib/viewer-probe.ts';
import type { BenchApi } from './api.ts';
import { type EntryMemory, entryMemory } from './memory.ts';

export const DESKTOP_IMAGE = 'grexal/desktop';
export const DESKTOP_POOL = 'desk';
// As bench/takeover: the page's header and footer take ~113 px, the desktop about 1280×800.
const VIEWPORT = { width: 1280, height: 913 };
const AGENT = `
  import { ctx } from '/opt/grexal/ctx.mjs';
  console.log('asking ' + Date.now());
  await ctx.requestTakeover({ reason: 'bench', timeoutMs: 120000 });
`;
const MiB = 1024 * 1024;
const MAX_FAILURES = 3;
const docker = new Docker();

interface Sample {
  /** POST → its answer. */
  post: number;
  /** POST → the agent's `asking` line (its clock is the host's). */
  asked: number;
  /** POST → the `takeover.requested` event with the link. */
  link: number;
  /** POST → the first frame drawn in the page: the figure. */
  total: number;
  /** From the link on, as bench/takeover splits it: tab opened, page loaded, WebSocket open,
   * RFB handshake (→ noVNC's first FramebufferUpdateRequest), first rectangle, drawn. */
  phases: Record<Phase, number>;
}

const PHASES = ['tab', 'load', 'wsOpen', 'handshake', 'firstRect', 'drawn'] as const;
type Phase = (typeof PHASES)[number];

async function sample(
  client: RunnerClient,
  context: BrowserContext,
  warm: boolean,
  tabs?: PlainTabs,
): Promise<Sample> {
  const started = Date.now();
  const created = await client.create({
    image: DESKTOP_IMAGE,
    desktop: true,
    command: ['node', '--input-type=module', '-e', AGENT],
    ...(warm ? {} : { pool: 'nonesuch' }),
  });
  if (created.warm !== warm) throw new Error(`${created.id}: warm ${created.warm}, meant ${warm}`);
  const posted = Date.now();
  let asked = Number.NaN;
  // Every event, read beside the browser's work and said if the sample fails: a failure must show
  // its cause, not only a timeout.
  const seenEvents: string[] = [];
  let announce: (event: { url: string; takeoverId: string }) => void = () => {};
  let endedEarly: (error: Error) => void = () => {};
  // A takeover that ends before its first frame fails the sample at once, not after the probe's 30 s.
  const ended = new Promise<never>((_, reject) => {
    endedEarly = reject;
  });
  ended.catch(() => {});
  const announced = new Promise<{ url: string; takeoverId: string }>((resolve) => {
    announce = resolve;
  });
  const reading = (async () => {
    for await (const event of client.events(created.id)) {
      seenEvents.push(
        `+${Date.now() - started} ms ${JSON.stringify(event).replace(/token=[\w-]+/, 'token=…')}`,
      );
      if (event.type === 'log') {
        const m = /asking (\d+)/.exec(event.text);
        if (m) asked = Number(m[1]);
      }
      if (event.type === 'takeover.requested') announce(event);
      if (event.type === 'takeover.cancelled' || event.type === 'takeover.expired')
        endedEarly(new Error(`the takeover ended before its first frame: ${event.type}`));
      if (event.type === 'exit') return;
    }
  })();
  let result: Omit<Sample, 'asked'>;
  try {
    const event = await Promise.race([
      announced,
      reading.then(() => Promise.reject(new Error('it ended without a takeover'))),
    ]);
    const seen = Date.now();
    let loaded = Number.NaN;
    let navigated = Number.NaN;
    let opened: number;
    let stamps: ViewerStamps;
    if (tabs) {
      const reported = tabs.reported(event.takeoverId);
      opened = Date.now();
      const { targetId } = await tabs.open(event.url);
      const timing = await Promise.race([reported, ended]).finally(() => tabs.close(targetId));
      navigated = timing.timeOrigin;
      stamps = plainStamps(timing);
    } else {
      const page = await context.newPage();
      opened = Date.now();
      const drawn = watchFirstDrawn(page);
      stamps = await Promise.race([
        page.goto(event.url).then(() => {
          loaded = Date.now();
          return drawn();
        }),
        ended,
      ]).finally(() => page.close());
    }
    result = {
      post: posted - started,
      link: seen - started,
      total: stamps.firstDrawn - started,
      phases: {
        tab: (tabs ? navigated : opened) - seen,
        load: loaded - opened,
        wsOpen: stamps.wsOpen - Math.max(stamps.wsCreated, opened),
        // A plain tab's: navigation start → noVNC connected.
        handshake: stamps.requested - (tabs ? navigated : stamps.wsOpen),
        firstRect: stamps.firstRect - stamps.requested,
        drawn: stamps.firstDrawn - stamps.firstRect,
      },
    };
    await client.completeTakeover(event.takeoverId, new URL(event.url).searchParams.get('token') ?? '');
    await reading;
  } catch (error) {
    const view = await client.get(created.id).catch((e: unknown) => String(e));
    console.error(
      `${warm ? 'warm' : 'cold'} sample ${created.id} failed; its events:\n  ${seenEvents.join('\n  ')}\n  now: ${JSON.stringify(view)}`,
    );
    throw error;
  }
  // Its containers gone before the next sample: no teardown under another side's start.
  for (let i = 0; i < 600; i++) {
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${LABEL_SANDBOX}=${created.id}`] },
    });
    if (left.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  // The agent's line may come after the link: its log and the runner's event travel apart.
  return { ...result, asked: asked - started };
}

/** One `grexal serve` whose desktop pool is timed: this build's, or a baseline's (`--baseline DIR`). */
export interface DesktopBuild {
  name: string;
  client: RunnerClient;
  api: BenchApi;
}

export interface DesktopOptions {
  /** This build first; a baseline build after it, rotated with it in every round. */
  builds: DesktopBuild[];
  rounds: number;
  /** This build's runner: its idle entries' memory is read before each of its warm samples. */
  runnerPid: number;
  /** The agent pool already set on every runner, and its size (its idle entries are measured too). */
  agentPool: { name: string; size: number };
  /** --plain-tab: links open in plain tabs, timed by the page reports this build's log carries. */
  timings?: { to?: (t: ViewerTiming) => void };
}

interface SideRun {
  build: string;
  warm: boolean;
  run: () => Promise<Sample>;
}

const sideName = (side: { build: string; warm: boolean }, builds: number) =>
  `${side.warm ? 'warm' : 'cold'}${builds > 1 ? ` (${side.build})` : ''}`;

/**
 * The sides' order in round `i`: warm and cold alternate A B B A within each build and, with a
 * baseline, the builds alternate too, so that no side always follows the same other side (a
 * rotation would put each warm sample after the same cold one every round, and whatever that one
 * leaves behind under the same warm sample).
 */
function roundOrder(sides: SideRun[], i: number): SideRun[] {
  const builds = [...new Set(sides.map((side) => side.build))];
  const byBuild = builds.map((build) => {
    const own = sides.filter((side) => side.build === build);
    return Math.floor(i / builds.length) % 2 ? own.reverse() : own;
  });
  return (i % builds.length ? byBuild.reverse() : byBuild).flat();
}

export async function desktopPart(options: DesktopOptions): Promise<void> {
  const { builds, rounds } = options;
  console.log(
    `bench/pool --part desktop: claim → request_takeover → first frame drawn, ${rounds} rounds alternated${builds.length > 1 ? `, ${builds.map((b) => b.name).join(' against ')}` : ''}`,
  );
  for (const build of builds)
    await build.api.call('PUT', `/v1/pools/${DESKTOP_POOL}`, {
      image: DESKTOP_IMAGE,
      desktop: true,
      size: 1,
    });
  // Every runner's pools full before every sample: no refill of one side runs under another's.
  const full = async () => {
    for (const build of builds) {
      await build.api.waitReady(DESKTOP_POOL, 1);
      await build.api.waitReady(options.agentPool.name, options.agentPool.size);
    }
  };
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: options.timings ? [...CHROMIUM_FLAGS, plainWindowSize(VIEWPORT)] : CHROMIUM_FLAGS,
  });
  const context = await browser.newContext({ viewport: VIEWPORT });
  await addViewerProbeToContext(context);
  const tabs = options.timings ? await openPlainTabs(browser) : undefined;
  if (options.timings && tabs) options.timings.to = tabs.onTiming;
  const memory: EntryMemory[] = [];
  try {
    const sides: SideRun[] = builds.flatMap((build, index) => [
      {
        build: build.name,
        warm: true,
        run: async () => {
          await full();
          // Settled: an entry counts as ready once its browser answers; give its start a moment.
          await new Promise((resolve) => setTimeout(resolve, 1000));
          if (index === 0) memory.push(...(await entryMemory(options.runnerPid)));
          return sample(build.client, context, true, tabs);
        },
      },
      {
        build: build.name,
        warm: false,
        run: async () => {
          await full();
          return sample(build.client, context, false, tabs);
        },
      },
    ]);
    const got = new Map<SideRun, Sample[]>(sides.map((side) => [side, []]));
    const ratios = new Map<string, number[]>(builds.map((build) => [build.name, []]));
    // A failed sample (its cause printed by sample()) voids its round, which is run again: the
    // failures are counted and said with the figures, up to MAX_FAILURES, then the bench stops.
    const failures: string[] = [];
    // Round 0 is the warm-up, not counted. The order rotates every round (A B B A with one build).
    for (let i = 0; i <= rounds; i++) {
      const order = roundOrder(sides, i);
      const round = new Map<SideRun, Sample>();
      try {
        for (const side of order) round.set(side, await side.run());
      } catch (error) {
        failures.push(`round ${i}: ${(error as Error).message}`);
        if (failures.length > MAX_FAILURES) throw error;
        i--;
        continue;
      }
      if (i === 0) {
        memory.length = 0;
        continue;
      }
      for (const [side, s] of round) got.get(side)!.push(s);
      for (const build of builds) {
        const of = (warm: boolean) =>
          [...round].find(([side]) => side.build === build.name && side.warm === warm)![1];
        ratios.get(build.name)!.push(of(true).total / of(false).total);
      }
      console.log(
        `  round ${i}: ${[...round].map(([side, s]) => `${sideName(side, builds.length)} ${ms(s.total)} (POST ${ms(s.post)}, asked ${ms(s.asked)}, link ${ms(s.link)})`).join(';  ')}`,
      );
    }
    for (const [side, samples] of got) {
      const q = (key: Exclude<keyof Sample, 'phases'>, p: number) =>
        ms(
          percentile(
            samples.map((s) => s[key]),
            p,
          ),
        );
      console.log(
        `${sideName(side, builds.length)}: claim → first frame p50 ${q('total', 50)}  p90 ${q('total', 90)}  (n=${samples.length}); p50 POST ${q('post', 50)}, agent asks ${q('asked', 50)}, link ${q('link', 50)}, link → first frame ${ms(
          percentile(
            samples.map((s) => s.total - s.link),
            50,
          ),
        )}`,
      );
    }
    for (const [side, samples] of got)
      console.log(
        `${sideName(side, builds.length)}: link → first frame, p50 of each phase: ${PHASES.map((ph) => {
          const p50 = percentile(
            samples.map((x) => x.phases[ph]),
            50,
          );
          // A plain tab carries no probe: only its connect and first frame are known.
          return `${ph} ${Number.isNaN(p50) ? 'unknown (plain tab)' : ms(p50)}`;
        }).join(', ')}`,
      );
    for (const [build, list] of ratios)
      console.log(
        `median ratio warm/cold${builds.length > 1 ? ` (${build})` : ''} ${median(list).toFixed(3)} (target ≤ 0.3)`,
      );
    console.log(
      `failed samples (their rounds run again): ${failures.length}${failures.map((f) => `\n  ${f}`).join('')}`,
    );
    reportMemory(memory);
  } finally {
    await browser.close();
    for (const build of builds) await build.api.call('DELETE', `/v1/pools/${DESKTOP_POOL}`);
  }
}

/** Idle memory per entry, by image, over every reading (one per warm round and entry). */
function reportMemory(memory: EntryMemory[]): void {
  for (const image of new Set(memory.map((m) => m.image))) {
    const bytes = memory.filter((m) => m.image === image).map((m) => m.bytes);
    console.log(
      `idle entry memory, ${image}: median ${(median(bytes) / MiB).toFixed(1)} MiB, min ${(Math.min(...bytes) / MiB).toFixed(1)}, max ${(Math.max(...bytes) / MiB).toFixed(1)} MiB (${bytes.length} readings)`,
    );
  }
}
