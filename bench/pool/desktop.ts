/**
 * bench/pool --part desktop: `POST /v1/sandboxes` of a desktop sandbox whose agent calls
 * `request_takeover` at once → the link's page, opened in a real browser (the host's Chromium, a
 * new tab per link as in the user's own browser), draws its first frame (bench/lib/viewer-probe.ts,
 * the measure bench/takeover uses). Warm (a desktop pool's entry: display, window manager, Chromium
 * and VNC already up) against cold (the same request, same API, naming a pool that matches
 * nothing), alternated. Before every sample the pool is full again, so no refill runs under a
 * sample; before every warm one, the idle entries' memory is read (agent and desktop).
 */
import Docker from 'dockerode';
import { type BrowserContext, chromium } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../examples/scripted-user.ts';
import type { RunnerClient } from '../../runner/client/index.ts';
import { LABEL_SANDBOX } from '../../runner/runtime/runtime.ts';
import { median, ms, percentile } from '../lib/stats.ts';
import { addViewerProbe, waitFirstDrawn } from '../lib/viewer-probe.ts';
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

async function sample(client: RunnerClient, context: BrowserContext, warm: boolean): Promise<Sample> {
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
    let loaded = 0;
    const page = await context.newPage();
    await addViewerProbe(page);
    const opened = Date.now();
    const stamps = await Promise.race([
      page.goto(event.url).then(() => {
        loaded = Date.now();
        return waitFirstDrawn(page);
      }),
      ended,
    ]).finally(() => page.close());
    result = {
      post: posted - started,
      link: seen - started,
      total: stamps.firstDrawn - started,
      phases: {
        tab: opened - seen,
        load: loaded - opened,
        wsOpen: stamps.wsOpen - Math.max(stamps.wsCreated, opened),
        handshake: stamps.requested - stamps.wsOpen,
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

export interface DesktopOptions {
  client: RunnerClient;
  api: BenchApi;
  rounds: number;
  runnerPid: number;
  /** The agent pool already set on the runner, and its size (its idle entries are measured too). */
  agentPool: { name: string; size: number };
}

export async function desktopPart(options: DesktopOptions): Promise<void> {
  const { client, api, rounds } = options;
  console.log(
    `bench/pool --part desktop: claim → request_takeover → first frame drawn, ${rounds} rounds alternated`,
  );
  await api.call('PUT', `/v1/pools/${DESKTOP_POOL}`, { image: DESKTOP_IMAGE, desktop: true, size: 1 });
  const full = async () => {
    await api.waitReady(DESKTOP_POOL, 1);
    await api.waitReady(options.agentPool.name, options.agentPool.size);
  };
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
  const context = await browser.newContext({ viewport: VIEWPORT });
  const memory: EntryMemory[] = [];
  try {
    const sides: [string, () => Promise<Sample>][] = [
      [
        'warm',
        async () => {
          await full();
          // Settled: an entry counts as ready once its browser answers; give its start a moment.
          await new Promise((resolve) => setTimeout(resolve, 1000));
          memory.push(...(await entryMemory(options.runnerPid)));
          return sample(client, context, true);
        },
      ],
      [
        'cold',
        async () => {
          await full();
          return sample(client, context, false);
        },
      ],
    ];
    const got = new Map<string, Sample[]>(sides.map(([name]) => [name, []]));
    const ratios: number[] = [];
    // A failed sample (its cause printed by sample()) voids its round, which is run again: the
    // failures are counted and said with the figures, up to MAX_FAILURES, then the bench stops.
    const failures: string[] = [];
    // Round 0 is the warm-up pair, not counted.
    for (let i = 0; i <= rounds; i++) {
      const order = i % 2 ? [...sides].reverse() : sides;
      const round = new Map<string, Sample>();
      try {
        for (const [name, run] of order) round.set(name, await run());
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
      for (const [name, s] of round) got.get(name)!.push(s);
      ratios.push(round.get('warm')!.total / round.get('cold')!.total);
      console.log(
        `  round ${i}: ${[...round].map(([name, s]) => `${name} ${ms(s.total)} (POST ${ms(s.post)}, asked ${ms(s.asked)}, link ${ms(s.link)})`).join(';  ')}`,
      );
    }
    for (const [name, samples] of got) {
      const q = (key: Exclude<keyof Sample, 'phases'>, p: number) =>
        ms(
          percentile(
            samples.map((s) => s[key]),
            p,
          ),
        );
      console.log(
        `${name}: claim → first frame p50 ${q('total', 50)}  p90 ${q('total', 90)}  (n=${samples.length}); p50 POST ${q('post', 50)}, agent asks ${q('asked', 50)}, link ${q('link', 50)}, link → first frame ${ms(
          percentile(
            samples.map((s) => s.total - s.link),
            50,
          ),
        )}`,
      );
    }
    for (const [name, samples] of got)
      console.log(
        `${name}: link → first frame, p50 of each phase: ${PHASES.map(
          (ph) =>
            `${ph} ${ms(
              percentile(
                samples.map((x) => x.phases[ph]),
                50,
              ),
            )}`,
        ).join(', ')}`,
      );
    console.log(`median ratio warm/cold ${median(ratios).toFixed(3)} (target ≤ 0.3)`);
    console.log(
      `failed samples (their rounds run again): ${failures.length}${failures.map((f) => `\n  ${f}`).join('')}`,
    );
    reportMemory(memory);
  } finally {
    await browser.close();
    await api.call('DELETE', `/v1/pools/${DESKTOP_POOL}`);
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
