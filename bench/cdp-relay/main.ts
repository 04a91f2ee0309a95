/**
 * bench/cdp-relay: what the relayed GREXAL_CDP_URL costs an agent against Chromium's own DevTools
 * port. Two headless Chromiums with the same flags:
 *   A  Chromium's own endpoint (--remote-debugging-port on loopback), as agents reached it before;
 *   B  the relayed path: a TCP connection to the supervisor's forwarder (cdpforward.py, run here on
 *      the host), the runner's relay on a Unix socket, one pipe to Chromium.
 * Playwright's connectOverCDP on each, alternated sample by sample: (a) a small round trip
 * (`page.evaluate`, the median of 50 per sample), (b) a 1280×800 PNG screenshot (one large message).
 *
 *   node scripts/run-ts.mjs bench/cdp-relay/main.ts [--samples 15]
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import { CdpRelay, LocalChromium } from '../../runner/browser/index.ts';
import { quietChromiumFlags } from '../../sandbox-agent/chromium-quiet.ts';
import { alternate, median, percentile } from '../lib/stats.ts';

const { values } = parseArgs({ options: { samples: { type: 'string', default: '15' } } });
const SAMPLES = Number(values.samples);
// Run from the repository root, as every bench.
const FORWARDER = join(process.cwd(), 'sandbox-agent/supervisor/cdpforward.py');
const PAGE = `data:text/html,<body style="margin:0;background:linear-gradient(90deg,red,blue)"><h1>bench</h1>`;
const logger = pino({ level: 'silent' });

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** A: Chromium listening on its own DevTools port. */
async function direct(): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const port = await freePort();
  const profile = await mkdtemp(join(tmpdir(), 'bench-cdp-direct-'));
  const child = spawn(
    '/usr/bin/chromium',
    [
      '--headless=new',
      `--remote-debugging-port=${port}`,
      '--remote-debugging-address=127.0.0.1',
      `--user-data-dir=${profile}`,
      ...quietChromiumFlags(),
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      'about:blank',
    ],
    { stdio: 'ignore', detached: true },
  );
  const endpoint = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (
      await fetch(`${endpoint}/json/version`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    endpoint,
    close: async () => {
      if (child.pid) process.kill(-child.pid, 'SIGKILL');
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** B: the relayed path, forwarder included. */
async function relayed(): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-cdp-relay-'));
  const browser = await LocalChromium.launch({ logger, headless: true });
  const relay = await CdpRelay.start(join(dir, 'cdp.sock'), { upstream: browser, logger });
  const port = await freePort();
  // As the supervisor starts it: the port bound by CdpForwarder.start, the process given it.
  const start = [
    'import sys, _signal',
    '_signal.pthread_sigmask(_signal.SIG_BLOCK, {_signal.SIGTERM})',
    `sys.path.insert(0, ${JSON.stringify(dirname(FORWARDER))})`,
    'from cdpforward import CdpForwarder',
    `forwarder = CdpForwarder.start(${port}, ${JSON.stringify(join(dir, 'cdp.sock'))})`,
    "print('ready', flush=True)",
    '_signal.sigwait({_signal.SIGTERM})',
    'forwarder.stop()',
  ].join('\n');
  const forwarder = spawn('python3', ['-I', '-S', '-c', start], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve) => forwarder.stdout.once('data', () => resolve()));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: async () => {
      forwarder.kill();
      await relay.close();
      await browser.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function openPage(endpoint: string): Promise<{ browser: Browser; page: Page }> {
  const browser = await chromium.connectOverCDP(endpoint);
  const page = await browser.contexts()[0]!.newPage();
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.goto(PAGE);
  return { browser, page };
}

async function roundTripMs(page: Page): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const start = performance.now();
    await page.evaluate((n) => n + 1, i);
    times.push(performance.now() - start);
  }
  return median(times);
}

async function screenshotMs(page: Page): Promise<number> {
  const start = performance.now();
  await page.screenshot({ type: 'png' });
  return performance.now() - start;
}

const a = await direct();
// Made inside the try: a relayed side that fails to start must not leave the direct one running.
let b: Awaited<ReturnType<typeof relayed>> | undefined;
try {
  b = await relayed();
  const [pa, pb] = await Promise.all([openPage(a.endpoint), openPage(b.endpoint)]);
  const small = await alternate(
    SAMPLES,
    () => roundTripMs(pa.page),
    () => roundTripMs(pb.page),
  );
  const large = await alternate(
    SAMPLES,
    () => screenshotMs(pa.page),
    () => screenshotMs(pb.page),
  );
  const row = (name: string, r: { a: number[]; b: number[]; ratio: number }) =>
    console.log(
      `${name.padEnd(22)} direct p50 ${median(r.a).toFixed(2)} ms p90 ${percentile(r.a, 90).toFixed(2)} | relayed p50 ${median(r.b).toFixed(2)} ms p90 ${percentile(r.b, 90).toFixed(2)} | median ratio relayed/direct ${(1 / r.ratio).toFixed(2)}`,
    );
  console.log(`bench/cdp-relay: ${SAMPLES} alternated samples each`);
  row('evaluate round trip', small);
  row('screenshot 1280x800', large);
  await Promise.all([pa.browser.close(), pb.browser.close()]);
} finally {
  await a.close();
  await b?.close();
}
