/**
 * bench/takeover: time from the agent's ctx.request_takeover() to the first framebuffer drawn in
 * the takeover page's canvas, with the desktop already running. The "user" is the host's Chromium
 * (launched once, as a person's browser would already be open); each round opens the link in a new
 * tab, waits for drawn pixels, and presses Done.
 *
 *   node scripts/run-ts.mjs bench/takeover/main.ts [--rounds 10]
 */
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { CHROMIUM_FLAGS } from '../../examples/scripted-user.ts';
import { Runner } from '../../runner/index.ts';
import { startTakeoverServer } from '../../runner/takeover/index.ts';
import { median, ms, percentile } from '../lib/stats.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' } } });
const rounds = Number(values.rounds);

// The agent asks `rounds + 1` times (the first is a warm-up), printing when each call starts.
const AGENT = `
  import { ctx } from '/opt/grexal/ctx.mjs';
  for (let i = 0; i <= ${rounds}; i++) {
    console.log('asking ' + Date.now());
    await ctx.requestTakeover({ reason: 'bench ' + i, timeoutMs: 60000 });
  }
`;

const runner = await Runner.start({});
const server = await startTakeoverServer({ broker: runner.takeovers });
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
// One window, a new tab per link: as in the user's own browser.
const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
try {
  const sandbox = await runner.create({
    image: 'grexal/desktop',
    desktop: true,
    command: ['node', '--input-type=module', '-e', AGENT],
  });
  const asked: number[] = [];
  const links: string[] = [];
  let wake: () => void = () => {};
  sandbox.onEvent((event) => {
    if (event.type === 'log') for (const m of event.text.matchAll(/asking (\d+)/g)) asked.push(Number(m[1]));
    if (event.type === 'takeover.requested') {
      links.push(event.url);
      wake();
    }
  });
  await sandbox.start();
  const samples: number[] = [];
  for (let i = 0; i <= rounds; i++) {
    while (links.length <= i) await new Promise<void>((resolve) => (wake = resolve));
    const seen = Date.now();
    const page = await context.newPage();
    const opened = Date.now();
    await page.goto(links[i]!);
    const loaded = Date.now();
    // Drawn: some pixel of the canvas is not transparent black.
    await page.waitForFunction(
      () => {
        const canvas = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
        if (!canvas || canvas.width === 0) return false;
        const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
        for (let p = 3; data && p < data.length; p += 4 * 97) if (data[p] !== 0) return true;
        return false;
      },
      undefined,
      { polling: 'raf', timeout: 30_000 },
    );
    const drawn = Date.now();
    // The agent stamps the call inside the sandbox; same kernel clock as ours.
    if (i > 0) samples.push(drawn - asked[i]!);
    page.on('dialog', (dialog) => void dialog.accept());
    await page.click('#done');
    await page.close();
    if (i > 0) {
      const phases = `event ${seen - asked[i]!}, new tab ${opened - seen}, page load ${loaded - opened}, to first frame ${drawn - loaded}`;
      console.log(
        `  round ${String(i).padStart(2)}: request_takeover → first frame drawn ${ms(samples.at(-1)!)} (ms: ${phases})`,
      );
    }
  }
  await sandbox.exited;
  console.log(
    `p50 ${ms(median(samples))}  p90 ${ms(percentile(samples, 90))}  max ${ms(Math.max(...samples))} (target p50 ≤ 500 ms)`,
  );
} finally {
  await browser.close();
  await server.close();
  await runner.close();
}
