/**
 * The takeover stream against the real desktop (Xtigervnc, Chromium in a desktop sandbox) through
 * the host's Chromium and noVNC, as a user's browser: a UTF-8 paste lands in the sandbox's text
 * field, a phone-sized window resizes the sandbox's screen (a view-only one does not), and a
 * viewer's malformed RFB disconnects that viewer only.
 */
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CHROMIUM_FLAGS } from '../examples/scripted-user.ts';
import { Runner, type Sandbox } from '../runner/index.ts';
import { startTakeoverServer, type TakeoverServer } from '../runner/takeover/index.ts';
import { newStateDir, removeStateDir } from './helpers.ts';

let stateDir: string;
let runner: Runner;
let server: TakeoverServer;
let browser: Browser;

beforeAll(async () => {
  stateDir = await newStateDir();
  runner = await Runner.start({ stateDir });
  server = await startTakeoverServer({ broker: runner.takeovers });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_FLAGS });
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
  await runner?.close();
  await removeStateDir(stateDir);
});

/**
 * The agent opens a page with one text field filling the top of its window, asks for a takeover,
 * and once it ends (and the browser answers it again) prints the field's value and its window's
 * size (JSON on one line).
 */
const AGENT = `
  import { chromium } from 'playwright-core';
  import { ctx } from '/opt/grexal/ctx.mjs';
  const browser = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
  const page = browser.contexts()[0].pages()[0] ?? (await browser.contexts()[0].newPage());
  await page.goto('data:text/html,<textarea id=t style="width:100%;height:60vh;font:32px sans-serif"></textarea>');
  await ctx.requestTakeover({ reason: 'Paste, please', timeoutMs: 120000 }).catch((e) => console.log('outcome=' + e.code));
  // The takeover cut this agent off and reloaded its page in a new tab (docs/browser.md): connect again.
  await ctx.waitForBrowser({ timeoutMs: 30000 });
  const again = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
  const after = again.contexts()[0].pages()[0];
  const value = await after.$eval('#t', (t) => t.value);
  const size = await after.evaluate(() => [innerWidth, innerHeight, screen.width, screen.height]);
  console.log('result=' + JSON.stringify({ value, size }));
  await again.close();
`;

async function agentSandbox(): Promise<{
  sandbox: Sandbox;
  link: string;
  result: () => Promise<{ value: string; size: number[] }>;
}> {
  const sandbox = await runner.create({
    image: 'grexal/desktop',
    desktop: true,
    command: ['node', '--input-type=module', '-e', AGENT],
  });
  let output = '';
  const link = new Promise<string>((resolve) => {
    sandbox.onEvent((event) => {
      if (event.type === 'log') output += event.text;
      if (event.type === 'takeover.requested') resolve(event.url);
    });
  });
  await sandbox.start();
  return {
    sandbox,
    link: await link,
    result: async () => {
      await sandbox.exited;
      const line = /result=(.*)/.exec(output)?.[1];
      if (!line) throw new Error(`the agent printed no result: ${output}`);
      return JSON.parse(line) as { value: string; size: number[] };
    },
  };
}

async function open(link: string, viewport: { width: number; height: number }): Promise<Page> {
  const phone = viewport.width < 600;
  const page = await browser.newPage({ viewport, hasTouch: phone, isMobile: phone });
  page.on('dialog', (dialog) => void dialog.accept());
  await page.goto(link);
  await page.locator('#status[data-kind="ok"]').waitFor({ timeout: 30_000 });
  return page;
}

/** The size of the sandbox's screen as the page's noVNC has it (the framebuffer's). */
const desktopSize = (page: Page) =>
  page.evaluate(() => {
    const c = document.querySelector('#screen canvas') as HTMLCanvasElement | null;
    return c ? [c.width, c.height] : [0, 0];
  });

describe('the takeover stream on the real desktop', () => {
  it('pastes UTF-8 into the sandbox’s focused field: Grüße – 東京 ✓', async () => {
    const { link, result } = await agentSandbox();
    const page = await open(link, { width: 1280, height: 900 });
    // Click into the field (top of the sandbox's page) through the canvas, as a user would.
    const canvas = page.locator('#screen canvas');
    const box = (await canvas.boundingBox())!;
    await page.mouse.click(box.x + box.width / 2, box.y + box.height * 0.3);
    await page.locator('#paste').fill('Grüße – 東京 ✓');
    await page.locator('#paste').press('Enter');
    await page.locator('#paste-note', { hasText: 'Sent' }).waitFor();
    // Ctrl+V inside the desktop, through noVNC; give the clipboard's round trip a moment to land.
    await canvas.focus();
    await page.waitForTimeout(500);
    await page.keyboard.press('Control+KeyV');
    await page.waitForTimeout(1000);
    await page.click('#done');
    expect((await result()).value).toBe('Grüße – 東京 ✓');
  });

  it('a phone window resizes the sandbox’s screen to fit; a view-only window does not', async () => {
    const { link, result } = await agentSandbox();
    const phone = await open(link, { width: 390, height: 844 });
    // The screen follows the phone's desktop area (narrower than 1280 and taller than wide).
    await expect
      .poll(async () => desktopSize(phone), { timeout: 20_000 })
      .toSatisfy(([w, h]: number[]) => w! <= 400 && h! > w!);
    const [w, h] = await desktopSize(phone);
    const watcher = await open(link, { width: 1280, height: 900 });
    await watcher.locator('#control', { hasText: 'View only' }).waitFor();
    await watcher.waitForTimeout(1500);
    expect(await desktopSize(watcher)).toEqual([w, h]);
    if (process.env['TAKEOVER_SHOTS'])
      await phone.screenshot({ path: `${process.env['TAKEOVER_SHOTS']}/real-390x844.png` });
    await phone.click('#done');
    const { size } = await result();
    expect([size[2], size[3]]).toEqual([w, h]);
  });

  it('a viewer’s malformed RFB disconnects that viewer only', async () => {
    const { link, sandbox } = await agentSandbox();
    const url = new URL(link);
    const stream = `ws://${url.host}${url.pathname.replace('/takeover/', '/v1/takeovers/')}/stream?token=${url.searchParams.get('token')}`;
    const connect = () =>
      new Promise<{ ws: WebSocket; messages: Buffer[] }>((resolve, reject) => {
        const ws = new WebSocket(stream, { origin: `http://${url.host}` });
        const messages: Buffer[] = [];
        ws.on('message', (data: Buffer) => {
          messages.push(data);
          if (messages.length === 1) resolve({ ws, messages });
        });
        ws.on('error', reject);
      });
    const good = await connect();
    const bad = await connect();
    const closed = new Promise<number>((resolve) => bad.ws.on('close', (code) => resolve(code)));
    bad.ws.send(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 1, 99, 0, 0, 0])]));
    expect(await closed).toBe(1008);
    // The other viewer's session goes on: its handshake still gets the server's security types.
    const before = good.messages.length;
    good.ws.send(Buffer.from('RFB 003.008\n'));
    await expect.poll(() => good.messages.length, { timeout: 10_000 }).toBeGreaterThan(before);
    good.ws.close();
    runner.takeovers.cancelAllFor(sandbox.id);
    await sandbox.exited;
  });
});
