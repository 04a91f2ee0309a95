/**
 * A takeover's `until`, both halves against a real browser without a container: the desktop
 * helper's watch (sandbox-agent/browser-watch.ts) on a Unix socket, reading the host's Chromium
 * over CDP, and the runner's client of it (runner/takeover/until-watch.ts). The "site" is this
 * test's own HTTP server on loopback: /login, then /home which sets the session cookie.
 * The full path through a desktop sandbox is in test/takeover.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { watchUntil } from '../runner/takeover/until-watch.ts';
import { type BrowserWatch, startBrowserWatch } from '../sandbox-agent/browser-watch.ts';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

let dir: string;
let site: Server;
let origin: string;
let browser: BrowserContext;
let page: Page;
let watch: BrowserWatch;
let socketPath: string;

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-until-'));
  site = createServer((req, res) => {
    if (req.url === '/home') res.setHeader('Set-Cookie', 'sid=s3cr3t; Path=/; HttpOnly');
    res.setHeader('Content-Type', 'text/html');
    res.end(`<h1>${req.url}</h1>`);
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
  const cdpPort = await freePort();
  // The browser's own (default) profile, as the sandbox's Chromium has: that is where the user logs in.
  browser = await chromium.launchPersistentContext(join(dir, 'profile'), {
    executablePath: CHROMIUM,
    args: ['--no-sandbox', `--remote-debugging-port=${cdpPort}`],
  });
  page = browser.pages()[0] ?? (await browser.newPage());
  socketPath = join(dir, 'browser.sock');
  watch = await startBrowserWatch(socketPath, cdpPort);
});

afterAll(async () => {
  await watch?.close();
  await browser?.close();
  await new Promise((r) => site?.close(r));
  await rm(dir, { recursive: true, force: true });
});

describe('until, watched in a real browser', () => {
  it('is met by URL only once a page matching the glob opens', async () => {
    await page.goto(`${origin}/login`);
    const stop = new AbortController();
    let met: string | undefined;
    const watching = watchUntil(socketPath, { url: `${origin}/home*` }, stop.signal).then((m) => {
      met = m;
      return m;
    });
    // Still on /login: not met after several polls.
    await new Promise((r) => setTimeout(r, 700));
    expect(met).toBeUndefined();
    await page.goto(`${origin}/home`);
    expect(await watching).toBe('url');
  });

  it('is met by cookie once the site sets it', async () => {
    await browser.clearCookies();
    await page.goto(`${origin}/login`);
    const watching = watchUntil(socketPath, { cookie: 'sid' }, new AbortController().signal);
    await page.goto(`${origin}/home`);
    expect(await watching).toBe('cookie');
  });

  it('stops when the runner aborts, and refuses a path that is not a socket', async () => {
    const stop = new AbortController();
    const watching = watchUntil(socketPath, { cookie: 'never' }, stop.signal);
    stop.abort();
    await expect(watching).rejects.toThrow('stopped');
    await expect(watchUntil(dir, { cookie: 'sid' }, stop.signal)).rejects.toThrow(/not a socket/);
  });
});
