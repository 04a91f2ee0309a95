/**
 * A takeover's `until`, watched by the runner (runner/takeover/until-watch.ts) over its own CDP
 * connection to a real browser without a container: the host's Chromium with
 * `--remote-debugging-pipe`, as the browser container runs it, framed by runner/browser's
 * nulFramedConnection. The "site" is this test's own HTTP server on loopback: /login, then /home
 * which sets the session cookie. The full path through a desktop sandbox is in test/takeover.test.ts.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CdpSession, nulFramedConnection } from '../runner/browser/index.ts';
import { watchUntil } from '../runner/takeover/until-watch.ts';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

let dir: string;
let site: Server;
let origin: string;
let chromium: ChildProcess;
let cdp: CdpSession;
let pageSession: string;

async function goto(url: string): Promise<void> {
  const loaded = new Promise<void>((resolve) => {
    const off = cdp.onEvent((method, _params, sessionId) => {
      if (method === 'Page.loadEventFired' && sessionId === pageSession) {
        off();
        resolve();
      }
    });
  });
  await cdp.call('Page.navigate', { url }, pageSession);
  await loaded;
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
  chromium = spawn(
    CHROMIUM,
    [
      '--headless=new',
      '--no-sandbox',
      '--remote-debugging-pipe',
      `--user-data-dir=${join(dir, 'profile')}`,
      'about:blank',
    ],
    // Its own process group, so that the cleanup ends renderers and the zygote with it.
    { detached: true, stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] },
  );
  cdp = new CdpSession(
    nulFramedConnection({ readable: chromium.stdio[4] as Readable, writable: chromium.stdio[3] as Writable }),
  );
  const { targetId } = (await cdp.call('Target.createTarget', { url: 'about:blank' })) as {
    targetId: string;
  };
  ({ sessionId: pageSession } = (await cdp.call('Target.attachToTarget', { targetId, flatten: true })) as {
    sessionId: string;
  });
  await cdp.call('Page.enable', {}, pageSession);
});

afterAll(async () => {
  cdp?.close();
  if (chromium && chromium.exitCode === null) {
    const exited = new Promise((r) => chromium.once('exit', r));
    process.kill(-(chromium.pid as number), 'SIGKILL');
    await exited;
  }
  await new Promise((r) => site?.close(r));
  // A child that outlived the kill for a moment may still be writing into the profile.
  await rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 });
});

describe('until, watched by the runner over CDP in a real browser', () => {
  it('is met by URL only once a page matching the glob opens', async () => {
    await goto(`${origin}/login`);
    const stop = new AbortController();
    let met: string | undefined;
    const watching = watchUntil(cdp.call, { url: `${origin}/home*` }, stop.signal).then((m) => {
      met = m;
      return m;
    });
    // Still on /login: not met after several polls.
    await new Promise((r) => setTimeout(r, 700));
    expect(met).toBeUndefined();
    await goto(`${origin}/home`);
    expect(await watching).toBe('url');
  });

  it('is met by cookie once the site sets it', async () => {
    await cdp.call('Storage.clearCookies');
    await goto(`${origin}/login`);
    const watching = watchUntil(cdp.call, { cookie: 'sid' }, new AbortController().signal);
    await goto(`${origin}/home`);
    expect(await watching).toBe('cookie');
  });

  it('stops when the runner aborts, and fails when the browser is gone', async () => {
    const stop = new AbortController();
    const watching = watchUntil(cdp.call, { cookie: 'never' }, stop.signal);
    stop.abort();
    await expect(watching).rejects.toThrow('stopped');
    const gone = new CdpSession(
      nulFramedConnection({ readable: new PassThrough(), writable: new PassThrough() }),
    );
    gone.close();
    await expect(watchUntil(gone.call, { cookie: 'sid' }, new AbortController().signal)).rejects.toThrow(
      /closed/,
    );
  });
});
