/**
 * The CDP relay in front of a real Chromium (headless, on the host, over its pipe): Playwright and
 * raw WebSocket clients connect through a loopback→Unix-socket forwarder, as agents do through the
 * supervisor's inside a sandbox.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server } from 'node:http';
import { connect, createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CDP_CUT_CLOSE_CODE, CdpRelay, CdpSession } from '../runner/browser/index.ts';
import { LocalChromium } from '../runner/browser/local-chromium.ts';
import { spareUnfit } from '../runner/sandbox/clean-room.ts';

let dir: string;
let browser: LocalChromium;
let relay: CdpRelay;
let forwarder: NetServer;
let site: Server;
let endpoint: string;
let siteUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cdp-relay-it-'));
  const logger = pino({ level: 'silent' });
  browser = await LocalChromium.launch({ logger, headless: true });
  relay = await CdpRelay.start(join(dir, 'cdp.sock'), { upstream: browser, logger });
  forwarder = createServer((socket) => {
    const upstream = connect(join(dir, 'cdp.sock'));
    socket.pipe(upstream).pipe(socket);
    socket.on('error', () => upstream.destroy());
    upstream.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve) => forwarder.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(forwarder.address() as { port: number }).port}`;
  site = createHttpServer((request, response) => {
    if (request.url === '/form' && request.method === 'POST') {
      response.writeHead(200, { 'set-cookie': 'session=yes' });
      response.end('posted');
      return;
    }
    response.writeHead(200, { 'content-type': 'text/html' });
    response.end(`<title>${request.url}</title><p>hello</p>`);
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  siteUrl = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
});

afterAll(async () => {
  await relay?.close();
  await browser?.close();
  forwarder?.close();
  site?.close();
  await rm(dir, { recursive: true, force: true });
});

function rawClient(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('CdpRelay in front of a real Chromium', () => {
  it("answers Chromium's HTTP endpoints with the address the client used", async () => {
    const version = await (await fetch(`${endpoint}/json/version`)).json();
    expect(version.Browser).toMatch(/Chrome|Chromium/);
    expect(version.webSocketDebuggerUrl).toBe(
      `${endpoint.replace('http', 'ws')}/devtools/browser/${relay.browserId}`,
    );
    const page = await (await fetch(`${endpoint}/json/new?${siteUrl}/new`, { method: 'PUT' })).json();
    expect(page.webSocketDebuggerUrl).toBe(`${endpoint.replace('http', 'ws')}/devtools/page/${page.id}`);
    await expect
      .poll(async () =>
        (await (await fetch(`${endpoint}/json/list`)).json()).map((t: { id: string }) => t.id),
      )
      .toContain(page.id);
    expect(await (await fetch(`${endpoint}/json/close/${page.id}`)).text()).toBe('Target is closing');
  });

  it('serves two Playwright clients at once over the one pipe', async () => {
    const [a, b] = await Promise.all([chromium.connectOverCDP(endpoint), chromium.connectOverCDP(endpoint)]);
    try {
      const [pageA, pageB] = await Promise.all([a.contexts()[0]!.newPage(), b.contexts()[0]!.newPage()]);
      await Promise.all([pageA.goto(`${siteUrl}/a`), pageB.goto(`${siteUrl}/b`)]);
      expect(await pageA.title()).toBe('/a');
      expect(await pageB.title()).toBe('/b');
      expect(await pageA.evaluate(() => 6 * 7)).toBe(42);
      // Each sees the other's page as a target of the shared browser, and can drive its own.
      await expect
        .poll(() =>
          a
            .contexts()[0]!
            .pages()
            .map((p) => p.url()),
        )
        .toContain(`${siteUrl}/b`);
      await pageA.close();
      expect(await pageB.evaluate(() => document.title)).toBe('/b');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('cut closes the agents with the cut code, refuses them until resume, and spares the runner', async () => {
    const agent = await chromium.connectOverCDP(endpoint);
    const page = await agent.contexts()[0]!.newPage();
    await page.goto(`${siteUrl}/before`);
    const raw = await rawClient(`${endpoint.replace('http', 'ws')}/devtools/browser/${relay.browserId}`);
    const rawClosed = new Promise<number>((resolve) => raw.on('close', (code) => resolve(code)));
    const runner = relay.runnerConnection();
    const runnerReplies: Array<Record<string, unknown>> = [];
    runner.onMessage((m) => runnerReplies.push(JSON.parse(m)));
    const disconnected = new Promise((resolve) => agent.on('disconnected', resolve));

    relay.cut('takeover');
    expect(await rawClosed).toBe(CDP_CUT_CLOSE_CODE);
    await disconnected;
    expect((await fetch(`${endpoint}/json/version`)).status).toBe(503);
    await expect(chromium.connectOverCDP(endpoint, { timeout: 5_000 })).rejects.toThrow();

    // The runner drives the browser through the cut, and sees none of the agent's sessions.
    runner.send(JSON.stringify({ id: 1, method: 'Target.getTargets' }));
    await expect.poll(() => runnerReplies.find((m) => m['id'] === 1)).toBeTruthy();
    type Targets = { targetInfos: Array<{ url: string; attached: boolean }> };
    const targets =
      (runnerReplies.find((m) => m['id'] === 1)?.['result'] as Targets | undefined)?.targetInfos ?? [];
    const before = targets.find((t) => t.url === `${siteUrl}/before`);
    expect(before).toBeDefined();
    // Detached with the agent's session: no session of the agent's is left on its page.
    await expect
      .poll(async () => {
        runner.send(JSON.stringify({ id: 2, method: 'Target.getTargets' }));
        await new Promise((resolve) => setTimeout(resolve, 50));
        const reply = runnerReplies.filter((m) => m['id'] === 2).at(-1)?.['result'] as
          | { targetInfos: Array<{ url: string; attached: boolean }> }
          | undefined;
        return reply?.targetInfos.find((t) => t.url === `${siteUrl}/before`)?.attached;
      })
      .toBe(false);

    relay.resume();
    const again = await chromium.connectOverCDP(endpoint);
    await expect
      .poll(() =>
        again
          .contexts()[0]!
          .pages()
          .map((p) => p.url()),
      )
      .toContain(`${siteUrl}/before`);
    await again.close();
    runner.close();
  });

  it("never hands the runner's events to an agent, nor an agent's to the runner", async () => {
    const runner = relay.runnerConnection();
    const runnerMessages: string[] = [];
    runner.onMessage((m) => runnerMessages.push(m));
    const agent = await chromium.connectOverCDP(endpoint);
    const agentPage = await agent.contexts()[0]!.newPage();
    const agentSession = await agent.contexts()[0]!.newCDPSession(agentPage);
    const agentEvents: string[] = [];
    await agentSession.send('Network.enable');
    agentSession.on('Network.requestWillBeSent', (event) => agentEvents.push(event.request.url));

    // The runner opens its own page and watches its network.
    runner.send(JSON.stringify({ id: 1, method: 'Target.createTarget', params: { url: 'about:blank' } }));
    await expect.poll(() => runnerMessages.some((m) => m.startsWith('{"id":1,'))).toBe(true);
    const targetId = JSON.parse(runnerMessages.find((m) => m.startsWith('{"id":1,'))!).result.targetId;
    runner.send(
      JSON.stringify({ id: 2, method: 'Target.attachToTarget', params: { targetId, flatten: true } }),
    );
    await expect.poll(() => runnerMessages.some((m) => m.startsWith('{"id":2,'))).toBe(true);
    const sessionId = JSON.parse(runnerMessages.find((m) => m.startsWith('{"id":2,'))!).result.sessionId;
    runner.send(JSON.stringify({ id: 3, method: 'Network.enable', sessionId }));
    runner.send(
      JSON.stringify({
        id: 4,
        method: 'Page.navigate',
        params: { url: `${siteUrl}/runner-only` },
        sessionId,
      }),
    );
    await expect
      .poll(() =>
        runnerMessages.some((m) => m.includes('Network.requestWillBeSent') && m.includes('runner-only')),
      )
      .toBe(true);

    await agentPage.goto(`${siteUrl}/agent-only`);
    expect(agentEvents).toContain(`${siteUrl}/agent-only`);
    expect(agentEvents.some((url) => url.includes('runner-only'))).toBe(false);
    expect(runnerMessages.some((m) => m.includes('agent-only') && m.includes('Network.'))).toBe(false);
    // The agent cannot speak on the runner's session.
    const raw = await rawClient(`${endpoint.replace('http', 'ws')}/devtools/browser/${relay.browserId}`);
    const answer = new Promise<Record<string, unknown>>((resolve) =>
      raw.once('message', (data) => resolve(JSON.parse(String(data)))),
    );
    raw.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression: '1' }, sessionId }));
    expect((await answer)['error']).toMatchObject({ code: -32001 });
    raw.close();
    await agent.close();
    runner.close();
  });

  it('leaves nothing an agent set up behind a cut: a browser-level Fetch interception of a nested browser session goes too', async () => {
    const agent = await rawClient(`${endpoint.replace('http', 'ws')}/devtools/browser/${relay.browserId}`);
    const replies = new Map<number, Record<string, unknown>>();
    agent.on('message', (data) => {
      const message = JSON.parse(String(data));
      if (typeof message.id === 'number') replies.set(message.id, message);
    });
    const call = async (
      id: number,
      method: string,
      params: Record<string, unknown> = {},
      sessionId?: string,
    ) => {
      agent.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
      await expect.poll(() => replies.get(id)).toBeTruthy();
      return replies.get(id) as { result?: Record<string, unknown>; error?: unknown };
    };
    // A browser session of its own, under the agent's: every request of every page paused for it.
    const nested = (await call(1, 'Target.attachToBrowserTarget')).result?.['sessionId'] as string;
    expect(typeof nested).toBe('string');
    expect(
      (await call(2, 'Fetch.enable', { patterns: [{ urlPattern: '*' }] }, nested)).error,
    ).toBeUndefined();
    const closed = new Promise((resolve) => agent.on('close', resolve));
    relay.cut('takeover');
    await closed;
    // The runner (the user's page, say) loads a page: nothing holds its requests.
    const runner = relay.runnerConnection();
    const messages: Array<Record<string, unknown>> = [];
    runner.onMessage((m) => messages.push(JSON.parse(m)));
    runner.send(
      JSON.stringify({ id: 1, method: 'Target.createTarget', params: { url: `${siteUrl}/after-cut` } }),
    );
    await expect.poll(() => messages.find((m) => m['id'] === 1)).toBeTruthy();
    const created = messages.find((m) => m['id'] === 1)?.['result'] as { targetId?: string } | undefined;
    const targetId = created?.targetId;
    await expect
      .poll(
        async () => {
          runner.send(JSON.stringify({ id: 2, method: 'Target.getTargets' }));
          await new Promise((resolve) => setTimeout(resolve, 100));
          const reply = messages.filter((m) => m['id'] === 2).at(-1)?.['result'] as
            | { targetInfos: Array<{ targetId: string; title: string }> }
            | undefined;
          return reply?.targetInfos.find((t) => t.targetId === targetId)?.title;
        },
        { timeout: 10_000 },
      )
      .toBe('/after-cut');
    runner.close();
    relay.resume();
  });

  it('ends an agent that sends garbage, and only it', async () => {
    const good = await chromium.connectOverCDP(endpoint);
    const bad = await rawClient(`${endpoint.replace('http', 'ws')}/devtools/browser/${relay.browserId}`);
    const closed = new Promise<number>((resolve) => bad.on('close', (code) => resolve(code)));
    bad.send('\u0000not json');
    expect(await closed).toBe(1007);
    const page = await good.contexts()[0]!.newPage();
    await page.goto(`${siteUrl}/still`);
    expect(await page.title()).toBe('/still');
    await good.close();
  });
});

describe("the relay's spare tab, against an agent that hunts for it", () => {
  it('shows it to no agent, watching while it is made or connecting after, refuses every call naming it, and leaves it pristine', async () => {
    const browserUrl = `${endpoint.replace('http', 'ws')}/devtools/browser/${relay.browserId}`;
    const agent = await rawClient(browserUrl);
    const seen: string[] = [];
    const replies = new Map<number, Record<string, unknown>>();
    agent.on('message', (data) => {
      seen.push(String(data));
      const message = JSON.parse(String(data));
      if (typeof message.id === 'number') replies.set(message.id, message);
    });
    let nextId = 1;
    const call = async (method: string, params: Record<string, unknown> = {}, sessionId?: string) => {
      const id = nextId++;
      agent.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
      await expect.poll(() => replies.get(id)).toBeTruthy();
      return replies.get(id) as { result?: Record<string, unknown>; error?: { message: string } };
    };
    // Everything it can watch: every target type (tabs too), auto-attach to tabs (paused on
    // start), and a nested browser session auto-attached to pages.
    expect((await call('Target.setDiscoverTargets', { discover: true, filter: [{}] })).error).toBeUndefined();
    const autoAttach = { autoAttach: true, waitForDebuggerOnStart: true, flatten: true };
    expect(
      (await call('Target.setAutoAttach', { ...autoAttach, filter: [{ type: 'page', exclude: true }, {}] }))
        .error,
    ).toBeUndefined();
    const nested = (await call('Target.attachToBrowserTarget')).result?.['sessionId'] as string;
    expect((await call('Target.setAutoAttach', autoAttach, nested)).error).toBeUndefined();

    relay.spare.enable();
    expect(await relay.spare.ready()).toBe(true);
    const spare = relay.spare.current!;
    // Chromium wraps the page in a tab target, and the relay knew it.
    expect(spare.tabId).toEqual(expect.any(String));
    const ids = [spare.targetId, spare.tabId!];

    // A Playwright agent connecting afterwards (its auto-attach finds existing targets).
    const late = await chromium.connectOverCDP(endpoint);
    const latePages = late
      .contexts()
      .flatMap((c) => c.pages())
      .map((p) => p.url());

    const listed = (await call('Target.getTargets', { filter: [{}] })).result?.['targetInfos'] as Array<{
      targetId: string;
    }>;
    expect(listed.length).toBeGreaterThan(0);
    for (const method of [
      'Target.attachToTarget',
      'Target.getTargetInfo',
      'Target.closeTarget',
      'Target.activateTarget',
      'Target.autoAttachRelated',
      'Browser.getWindowForTarget',
    ])
      for (const targetId of ids)
        expect((await call(method, { targetId, flatten: true })).error?.message, method).toBe(
          'No target with given id found',
        );
    const jsonList = (await (await fetch(`${endpoint}/json/list`)).json()) as Array<{ id: string }>;
    expect((await fetch(`${endpoint}/json/close/${spare.targetId}`)).status).toBe(404);
    expect((await fetch(`${endpoint}/json/activate/${spare.targetId}`)).status).toBe(404);
    await expect(
      rawClient(`${endpoint.replace('http', 'ws')}/devtools/page/${spare.targetId}`),
    ).rejects.toThrow(/404/);
    // Not one message to the agent named it, nor an id of a session attached to it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const id of ids) expect(seen.filter((m) => m.includes(id))).toEqual([]);
    expect(jsonList.map((t) => t.id)).not.toContain(spare.targetId);
    expect(latePages.length).toBe(listed.filter((t) => (t as { type?: string }).type === 'page').length);

    // As made: nobody attached (the agent's auto-attached sessions were undone), one about:blank
    // entry, no opener, the default context.
    const runner = new CdpSession(relay.runnerConnection());
    const { targetInfos } = (await runner.call('Target.getTargets')) as {
      targetInfos: Array<{ targetId: string; attached: boolean }>;
    };
    await expect
      .poll(async () => {
        const { targetInfos: now } = (await runner.call('Target.getTargets')) as {
          targetInfos: Array<{ targetId: string; attached: boolean }>;
        };
        return now.find((t) => t.targetId === spare.targetId)?.attached;
      })
      .toBe(false);
    expect(targetInfos.some((t) => t.targetId === spare.targetId)).toBe(true);
    const { sessionId } = (await runner.call('Target.attachToTarget', {
      targetId: spare.targetId,
      flatten: true,
    })) as { sessionId: string };
    const [{ targetInfo }, history, contexts] = (await Promise.all([
      runner.call('Target.getTargetInfo', { targetId: spare.targetId }),
      runner.call('Page.getNavigationHistory', {}, sessionId),
      runner.call('Target.getBrowserContexts'),
    ])) as [{ targetInfo: never }, never, { browserContextIds: string[] }];
    expect(spareUnfit(spare, targetInfo, history, contexts.browserContextIds)).toBeUndefined();
    await runner.call('Target.detachFromTarget', { sessionId });

    // Taken, it is the runner's and anyone's: the user's page after the takeover.
    relay.cut('takeover');
    expect((await relay.spare.take())?.targetId).toBe(spare.targetId);
    relay.resume();
    const after = await chromium.connectOverCDP(endpoint);
    await expect.poll(() => after.contexts()[0]!.pages().length).toBe(latePages.length + 1);
    // resume() makes the next spare in the background; it is hidden as the first was.
    expect(await relay.spare.ready()).toBe(true);
    expect(relay.spare.current?.targetId).not.toBe(spare.targetId);
    await after.close();
    await late.close().catch(() => {});
    agent.close();
    runner.close();
  });
});
