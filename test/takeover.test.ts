/**
 * Takeovers against a real desktop sandbox: the agent's request_takeover ends as the user (or the
 * clock) decides, and the stream refuses anyone without the takeover's token before any VNC byte.
 * The full login through the noVNC canvas is the demo's test (test/dev.test.ts); the page's own
 * behaviour (control, paste, reconnect) is test/takeover-page.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Runner, type Sandbox } from '../runner/index.ts';
import { startTakeoverServer, type TakeoverServer } from '../runner/takeover/index.ts';
import { newStateDir, removeStateDir, sandboxContainers } from './helpers.ts';

let stateDir: string;
let runner: Runner;
let server: TakeoverServer;

beforeAll(async () => {
  stateDir = await newStateDir();
  runner = await Runner.start({ stateDir });
  server = await startTakeoverServer({ broker: runner.takeovers });
});
afterAll(async () => {
  await server.close();
  await runner.close();
  await removeStateDir(stateDir);
});

/** An agent that asks for a takeover and prints how it ended. */
const agent = (timeoutMs: number) => `
  import { ctx } from '/opt/grexal/ctx.mjs';
  try {
    await ctx.requestTakeover({ connectionId: 'site', reason: 'Log in, please.', timeoutMs: ${timeoutMs} });
    console.log('outcome=completed');
  } catch (error) {
    console.log('outcome=' + error.code);
  }
`;

async function takeoverAgent(timeoutMs = 60_000) {
  const sandbox: Sandbox = await runner.create({
    image: 'grexal/desktop',
    desktop: true,
    command: ['node', '--input-type=module', '-e', agent(timeoutMs)],
    manifest: { connections: [{ id: 'site', mode: 'browser_login', label: 'The site' }] },
    credentials: {},
  });
  let output = '';
  const requested = new Promise<{ url: string; takeoverId: string }>((resolve) => {
    sandbox.onEvent((event) => {
      if (event.type === 'log') output += event.text;
      if (event.type === 'takeover.requested') resolve(event);
    });
  });
  await sandbox.start();
  const { url, takeoverId } = await requested;
  return { sandbox, url: new URL(url), takeoverId, output: () => output };
}

function post(url: URL): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST' }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

function get(url: URL): Promise<number> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

/** Opens the stream; resolves with the HTTP status of a refusal, or the first bytes received. */
function openStream(url: string, origin: string): Promise<{ status?: number; firstBytes?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { origin });
    ws.on('unexpected-response', (_req, res) => {
      resolve({ status: res.statusCode });
      ws.terminate();
    });
    ws.on('message', (data: Buffer) => {
      resolve({ firstBytes: data.subarray(0, 12).toString('latin1') });
      ws.close();
    });
    ws.on('error', () => {});
  });
}

describe('takeovers on a real desktop', () => {
  it('refuses a missing or wrong token before any VNC byte, then serves the right one; Done completes; the link then answers 410', async () => {
    const { sandbox, url, takeoverId, output } = await takeoverAgent();
    const token = url.searchParams.get('token')!;
    const stream = `ws://${url.host}/v1/takeovers/${takeoverId}/stream`;
    const origin = `http://${url.host}`;
    expect(await openStream(stream, origin)).toEqual({ status: 401 });
    expect(await openStream(`${stream}?token=${'x'.repeat(token.length)}`, origin)).toEqual({ status: 403 });
    expect(await openStream(`${stream}?token=${token}`, 'http://evil.example')).toEqual({ status: 403 });
    // The right token gets the desktop's RFB greeting, from Xtigervnc through the bridge.
    expect((await openStream(`${stream}?token=${token}`, origin)).firstBytes).toMatch(/^RFB 003\.00\d\n$/);

    expect(await post(new URL(`http://${url.host}/v1/takeovers/${takeoverId}/complete?token=${token}`))).toBe(
      200,
    );
    expect((await sandbox.exited).exitCode).toBe(0);
    expect(output()).toContain('outcome=completed');
    expect(await get(url)).toBe(410);
    expect(await openStream(`${stream}?token=${token}`, origin)).toEqual({ status: 410 });
    expect(await sandboxContainers(sandbox.id)).toEqual([]);
  });

  it('runs the desktop’s Chromium without a renderer of its own for a WebUI popup (idle memory)', async () => {
    const { sandbox, url, takeoverId } = await takeoverAgent();
    const browser = (await sandboxContainers(sandbox.id)).find((c) => c.Labels['grexal.role'] === 'browser');
    const processes = execFileSync('docker', [
      'exec',
      browser!.Id,
      'sh',
      '-c',
      'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline; echo; done',
    ]).toString();
    const renderers = processes.split('\n').filter((line) => line.includes('--type=renderer'));
    // The pages' renderers run; Chromium 156's omnibox AI-mode popup (a top-chrome WebUI, ~76 MiB
    // PSS, whatever WebUIOmniboxPopup says) does not, nor any other top-chrome WebUI.
    expect(renderers.length).toBeGreaterThan(0);
    expect(renderers.filter((line) => line.includes('--top-chrome-webui'))).toEqual([]);
    const token = url.searchParams.get('token')!;
    await post(new URL(`http://${url.host}/v1/takeovers/${takeoverId}/complete?token=${token}`));
    expect((await sandbox.exited).exitCode).toBe(0);
  });

  it('Cancel rejects the agent’s call with takeover_cancelled', async () => {
    const { sandbox, url, takeoverId, output } = await takeoverAgent();
    const token = url.searchParams.get('token')!;
    expect(await post(new URL(`http://${url.host}/v1/takeovers/${takeoverId}/cancel?token=${token}`))).toBe(
      200,
    );
    await sandbox.exited;
    expect(output()).toContain('outcome=takeover_cancelled');
  });

  it('an unanswered takeover expires with takeover_expired', async () => {
    const { sandbox, output } = await takeoverAgent(10_000);
    await sandbox.exited;
    expect(output()).toContain('outcome=takeover_expired');
  });

  it('refuses a second takeover while one is open, and a timeout out of range', async () => {
    const sandbox = await runner.create({
      image: 'grexal/desktop',
      desktop: true,
      command: [
        'node',
        '--input-type=module',
        '-e',
        // A page of the agent's own (on the sandbox's loopback) leaves it running during the
        // takeover (docs/browser.md), so it can ask again while the first is open.
        `import { createServer } from 'node:http';
         import { chromium } from 'playwright-core';
         import { ctx } from '/opt/grexal/ctx.mjs';
         const site = createServer((req, res) => res.end('<h1>own page</h1>'));
         await new Promise((r) => site.listen(8082, '127.0.0.1', r));
         const browser = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
         await (browser.contexts()[0].pages()[0] ?? (await browser.contexts()[0].newPage())).goto('http://127.0.0.1:8082/');
         const first = ctx.requestTakeover({ reason: 'one' }).catch((e) => e.code);
         await new Promise((r) => setTimeout(r, 300));
         const second = await ctx.requestTakeover({ reason: 'two' }).catch((e) => e.code);
         const short = await ctx.requestTakeover({ reason: 'x', timeoutMs: 5 }).catch((e) => e.code);
         console.log('second=' + second + ' short=' + short);
         process.exit(0);`,
      ],
    });
    let output = '';
    sandbox.onEvent((event) => {
      if (event.type === 'log') output += event.text;
    });
    await sandbox.start();
    await sandbox.exited;
    expect(output).toContain('second=takeover_in_progress short=invalid_request');
  });

  /**
   * The agent serves its own "site" on the sandbox's loopback (/login, then /home which sets the
   * session cookie), opens /login in the desktop's Chromium and asks for a takeover with `until`.
   * The agent is cut off from the browser while the takeover is open (docs/browser.md), so the
   * login page itself, loaded afresh by the runner, stands in for the user: it moves on to /home a
   * moment later. Afterwards the agent waits for the browser and reads the cookie again.
   */
  const untilAgent = (until: string) => `
    import { createServer } from 'node:http';
    import { chromium } from 'playwright-core';
    import { ctx } from '/opt/grexal/ctx.mjs';
    const site = createServer((req, res) => {
      if (req.url === '/home') res.setHeader('Set-Cookie', 'sid=1; Path=/');
      res.setHeader('Content-Type', 'text/html');
      const next = req.url === '/login' ? '<script>setTimeout(() => { location = "/home"; }, 1500)</script>' : '';
      res.end('<h1>' + req.url + '</h1>' + next);
    });
    await new Promise((r) => site.listen(8081, '127.0.0.1', r));
    const browser = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
    const page = browser.contexts()[0].pages()[0] ?? (await browser.contexts()[0].newPage());
    await page.goto('http://127.0.0.1:8081/login');
    try {
      await ctx.requestTakeover({ reason: 'Sign in', timeoutMs: 60000, until: ${until} });
      console.log('outcome=completed');
    } catch (error) {
      console.log('outcome=' + error.code);
    }
    await ctx.waitForBrowser({ timeoutMs: 30000 });
    const again = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
    const cookies = await again.contexts()[0].cookies('http://127.0.0.1:8081');
    console.log('cookie=' + cookies.map((c) => c.name).join(','));
    // Exit at once: the site's keep-alive connections from Chromium would hold the process open.
    process.exit(0);
  `;

  for (const [what, until] of [
    ['URL', "{ url: 'http://127.0.0.1:8081/home*' }"],
    ['cookie', "{ cookie: 'sid' }"],
  ] as const) {
    it(`until completes a takeover by itself by ${what}: takeover.completed by condition, the link then answers 410`, async () => {
      const sandbox = await runner.create({
        image: 'grexal/desktop',
        desktop: true,
        command: ['node', '--input-type=module', '-e', untilAgent(until)],
      });
      let output = '';
      const events: { type: string; by?: string; url?: string }[] = [];
      sandbox.onEvent((event) => {
        if (event.type === 'log') output += event.text;
        events.push(event as never);
      });
      await sandbox.start();
      expect((await sandbox.exited).exitCode).toBe(0);
      expect(output).toContain('outcome=completed');
      expect(output).toContain('cookie=sid');
      expect(events.find((e) => e.type === 'takeover.completed')).toMatchObject({ by: 'condition' });
      const link = events.find((e) => e.type === 'takeover.requested')?.url;
      expect(await get(new URL(link!))).toBe(410);
    });
  }

  it('refuses a bad until with invalid_request naming the field, and opens nothing', async () => {
    const sandbox = await runner.create({
      image: 'grexal/desktop',
      desktop: true,
      command: [
        'node',
        '--input-type=module',
        '-e',
        `import { ctx } from '/opt/grexal/ctx.mjs';
         for (const until of [{}, { url: 'https://*' }, { cookie: 'a b' }, { url: 'https://x.test/' + 'a'.repeat(2000) }]) {
           const error = await ctx.requestTakeover({ reason: 'x', until }).catch((e) => e);
           console.log('refused ' + error.code + ' ' + error.message.split(':')[1].trim());
         }`,
      ],
    });
    let output = '';
    let requested = 0;
    sandbox.onEvent((event) => {
      if (event.type === 'log') output += event.text;
      if (event.type === 'takeover.requested') requested++;
    });
    await sandbox.start();
    await sandbox.exited;
    expect(output.match(/refused \S+ \S+/g)).toEqual([
      'refused invalid_request until',
      'refused invalid_request until.url',
      'refused invalid_request until.cookie',
      'refused invalid_request until.url',
    ]);
    expect(requested).toBe(0);
  });
});
