import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FakeChromium } from './fake-chromium.ts';
import { CDP_CUT_CLOSE_CODE, CdpRelay } from './relay.ts';

let dir: string;
let browser: FakeChromium;
let relay: CdpRelay;
let socketPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'relay-test-'));
  socketPath = join(dir, 'cdp.sock');
  browser = new FakeChromium();
  relay = await CdpRelay.start(socketPath, {
    upstream: browser,
    logger: pino({ level: 'silent' }),
    maxMessageBytes: 4096,
  });
});

afterEach(async () => {
  await relay.close();
  await rm(dir, { recursive: true, force: true });
});

function http(
  method: string,
  path: string,
  host = '127.0.0.1:9222',
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers: { host } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** A CDP client over the relay's socket, as the forwarder hands agents to it. */
class Client {
  readonly messages: Array<Record<string, unknown>> = [];
  readonly ws: WebSocket;
  readonly closedWith: Promise<{ code: number; reason: string }>;
  private nextId = 1;
  private waiters: Array<() => void> = [];

  constructor(path: string) {
    this.ws = new WebSocket(`ws+unix://${socketPath}:${path}`, { headers: { host: '127.0.0.1:9222' } });
    this.ws.on('message', (data) => {
      this.messages.push(JSON.parse(String(data)));
      for (const waiter of this.waiters.splice(0)) waiter();
    });
    this.ws.on('error', () => {});
    this.closedWith = new Promise((resolve) =>
      this.ws.on('close', (code, reason) => resolve({ code, reason: String(reason) })),
    );
  }

  static async open(path = `/devtools/browser/${relay.browserId}`): Promise<Client> {
    const client = new Client(path);
    await new Promise((resolve, reject) => {
      client.ws.once('open', resolve);
      client.ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
    return client;
  }

  async call(method: string, params: Record<string, unknown> = {}, sessionId?: string) {
    const id = this.nextId++;
    this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    return this.waitFor((m) => m['id'] === id);
  }

  async waitFor(match: (message: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    for (;;) {
      const found = this.messages.find(match);
      if (found) return found;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }
}

describe('CdpRelay over a fake browser', () => {
  it('answers /json/version with the in-sandbox address the Host header names', async () => {
    const { status, body } = await http('GET', '/json/version/', '127.0.0.1:9222');
    expect(status).toBe(200);
    const version = JSON.parse(body);
    expect(version.Browser).toBe('FakeChrome/1.0');
    expect(version.webSocketDebuggerUrl).toBe(`ws://127.0.0.1:9222/devtools/browser/${relay.browserId}`);
    expect(
      JSON.parse((await http('GET', '/json/version', 'localhost:9333')).body).webSocketDebuggerUrl,
    ).toMatch(/^ws:\/\/localhost:9333\//);
  });

  it('refuses a Host that is not an IP or localhost (DNS rebinding)', async () => {
    expect((await http('GET', '/json/version', 'evil.test:9222')).status).toBe(403);
  });

  it('lists pages, opens, activates and closes them', async () => {
    const listed = JSON.parse((await http('GET', '/json/list')).body);
    expect(listed).toEqual([expect.objectContaining({ id: 'T1', type: 'page', url: 'about:blank' })]);
    expect(listed[0].webSocketDebuggerUrl).toBe('ws://127.0.0.1:9222/devtools/page/T1');
    const created = await http('PUT', '/json/new?http://login.test/a?b=1');
    expect(JSON.parse(created.body)).toMatchObject({ id: 'T2', url: 'http://login.test/a?b=1' });
    expect(browser.methods('Target.createTarget').at(-1)?.params).toEqual({ url: 'http://login.test/a?b=1' });
    expect((await http('GET', '/json')).body).toContain('T2');
    expect((await http('PUT', '/json/activate/T2')).body).toBe('Target activated');
    expect((await http('PUT', '/json/close/T2')).body).toBe('Target is closing');
    expect((await http('PUT', '/json/close/T99')).status).toBe(404);
    expect((await http('GET', '/nothing')).status).toBe(404);
  });

  it('gives each client its own session and ids, and routes replies back to the sender', async () => {
    const [a, b] = await Promise.all([Client.open(), Client.open()]);
    const [ra, rb] = await Promise.all([
      a.call('Test.echo', { who: 'a' }),
      b.call('Test.echo', { who: 'b' }),
    ]);
    expect(ra).toEqual({ id: 1, result: { params: { who: 'a' }, session: expect.any(String) } });
    expect(rb).toEqual({ id: 1, result: { params: { who: 'b' }, session: expect.any(String) } });
    // Two browser sessions, never the root: detaching one undoes what that client did.
    const sessions = new Set(browser.methods('Test.echo').map((m) => m.sessionId));
    expect(sessions.size).toBe(2);
    expect(sessions.has(undefined)).toBe(false);
    // The implicit session is stripped from what the client sees.
    expect(ra['sessionId']).toBeUndefined();
  });

  it('routes a flattened session to its owner and refuses it to anyone else', async () => {
    const [a, b] = await Promise.all([Client.open(), Client.open()]);
    const attached = await a.call('Target.attachToTarget', { targetId: 'T1', flatten: true });
    const sessionId = (attached['result'] as { sessionId: string }).sessionId;
    expect(a.messages.some((m) => m['method'] === 'Target.attachedToTarget')).toBe(true);
    expect((await a.call('Test.echo', { x: 1 }, sessionId))['sessionId']).toBe(sessionId);
    const refused = await b.call('Test.echo', {}, sessionId);
    expect(refused['error']).toMatchObject({ code: -32001 });
    expect((await b.call('Target.detachFromTarget', { sessionId }))['error']).toMatchObject({ code: -32001 });
    expect(browser.methods('Test.echo').filter((m) => m.sessionId === sessionId)).toHaveLength(1);
    browser.emit(sessionId, 'Page.loadEventFired', { timestamp: 1 });
    await a.waitFor((m) => m['method'] === 'Page.loadEventFired');
    await b.call('Test.echo');
    expect(b.messages.some((m) => m['method'] === 'Page.loadEventFired')).toBe(false);
  });

  it('serves /devtools/page/<id> as a flattened session of its own', async () => {
    const page = await Client.open('/devtools/page/T1');
    const reply = await page.call('Test.echo', { p: 1 });
    expect(reply['sessionId']).toBeUndefined();
    const sent = browser.methods('Test.echo')[0];
    expect(sent?.sessionId && browser.sessions.get(sent.sessionId)).toBe('');
    await expect(Client.open('/devtools/page/T404')).rejects.toThrow(/404/);
    await expect(Client.open('/devtools/browser/not-the-id')).rejects.toThrow(/404/);
  });

  it('cut: closes agents with the cut code, detaches their sessions, refuses new ones until resume', async () => {
    const agent = await Client.open();
    const attached = await agent.call('Target.attachToTarget', { targetId: 'T1', flatten: true });
    const child = (attached['result'] as { sessionId: string }).sessionId;
    const runner = relay.runnerConnection();
    const runnerMessages: string[] = [];
    runner.onMessage((m) => runnerMessages.push(m));
    runner.send(JSON.stringify({ id: 1, method: 'Test.echo', params: {} }));
    relay.cut('takeover tko_1');
    expect(await agent.closedWith).toEqual({ code: CDP_CUT_CLOSE_CODE, reason: 'cut: takeover tko_1' });
    await expect.poll(() => browser.sessions.has(child)).toBe(false);
    const refused = await http('GET', '/json/version');
    expect(refused.status).toBe(503);
    expect(JSON.parse(refused.body).error.code).toBe('E_BROWSER_CUT');
    await expect(Client.open()).rejects.toThrow(/503/);
    // The runner's channel carries on through the cut.
    runner.send(JSON.stringify({ id: 2, method: 'Test.echo', params: { during: 'cut' } }));
    await expect.poll(() => runnerMessages.filter((m) => m.includes('"id":2')).length).toBe(1);
    relay.resume();
    const again = await Client.open();
    expect((await again.call('Test.echo'))['result']).toBeDefined();
    runner.close();
  });

  it("keeps the runner's channel and the agents' apart", async () => {
    const agent = await Client.open();
    const runner = relay.runnerConnection();
    const runnerMessages: Array<Record<string, unknown>> = [];
    runner.onMessage((m) => runnerMessages.push(JSON.parse(m)));
    runner.send(
      JSON.stringify({ id: 1, method: 'Target.attachToTarget', params: { targetId: 'T1', flatten: true } }),
    );
    await expect.poll(() => runnerMessages.find((m) => m['id'] === 1)).toBeTruthy();
    const runnerReply = runnerMessages.find((m) => m['id'] === 1);
    const runnerSession = String((runnerReply?.['result'] as { sessionId?: string } | undefined)?.sessionId);
    const agentReply = await agent.call('Target.attachToTarget', { targetId: 'T1', flatten: true });
    const agentSession = (agentReply['result'] as { sessionId: string }).sessionId;
    browser.emit(runnerSession, 'Network.requestWillBeSent', { secret: 'runner-only' });
    browser.emit(agentSession, 'Network.requestWillBeSent', { secret: 'agent-only' });
    await agent.waitFor((m) => m['method'] === 'Network.requestWillBeSent');
    await expect
      .poll(() => runnerMessages.some((m) => m['method'] === 'Network.requestWillBeSent'))
      .toBe(true);
    await agent.call('Test.echo');
    expect(JSON.stringify(agent.messages)).not.toContain('runner-only');
    expect(JSON.stringify(runnerMessages)).not.toContain('agent-only');
    // The agent cannot speak on the runner's session either.
    expect((await agent.call('Test.echo', {}, runnerSession))['error']).toMatchObject({ code: -32001 });
    runner.close();
  });

  it("answers an agent's Browser.close by ending its connection, never the browser", async () => {
    const agent = await Client.open();
    const other = await Client.open();
    const answer = await agent.call('Browser.close');
    expect(answer).toEqual({ id: 1, result: {} });
    expect(await agent.closedWith).toEqual({
      code: 1000,
      reason: expect.stringMatching(/^Browser\.close: /),
    });
    expect(browser.methods('Browser.close')).toEqual([]);
    // The browser and every other connection carry on; a new one opens as before.
    expect((await other.call('Test.echo'))['result']).toBeDefined();
    const next = await Client.open();
    expect((await next.call('Test.echo'))['result']).toBeDefined();
    other.ws.close();
    next.ws.close();
  });

  it("refuses what reaches past the browser, and keeps downloads in the relay's own directory", async () => {
    const agent = await Client.open();
    const refused = await agent.call('Target.exposeDevToolsProtocol', { targetId: 'T1' });
    expect(refused['error']).toMatchObject({ message: expect.stringMatching(/not available through/) });
    expect((await agent.call('Tethering.bind', { port: 2222 }))['error']).toBeDefined();
    await agent.call('Browser.setDownloadBehavior', { behavior: 'allow', downloadPath: '/home/dev/.ssh' });
    expect(browser.methods('Target.exposeDevToolsProtocol')).toEqual([]);
    expect(browser.methods('Tethering.bind')).toEqual([]);
    // No directory given to this relay: denied, the agent's path dropped.
    expect(browser.methods('Browser.setDownloadBehavior')[0]?.params).toEqual({ behavior: 'deny' });
    // The runner's own channel is not screened.
    const runner = relay.runnerConnection();
    runner.send(
      JSON.stringify({
        id: 1,
        method: 'Browser.setDownloadBehavior',
        params: { behavior: 'allow', downloadPath: '/x' },
      }),
    );
    await expect.poll(() => browser.methods('Browser.setDownloadBehavior').length).toBe(2);
    expect(browser.methods('Browser.setDownloadBehavior')[1]?.params).toEqual({
      behavior: 'allow',
      downloadPath: '/x',
    });
    runner.close();
  });

  it('ends only the agent connection that sends a malformed or oversized message', async () => {
    const [bad, big, good] = await Promise.all([Client.open(), Client.open(), Client.open()]);
    bad.ws.send('{not json');
    expect((await bad.closedWith).code).toBe(1007);
    big.ws.send(JSON.stringify({ id: 1, method: 'Test.echo', params: { x: 'y'.repeat(5000) } }));
    expect((await big.closedWith).code).toBe(1009);
    for (const text of [
      '[]',
      '{"id":-1,"method":"A.b"}',
      '{"id":1}',
      '{"id":1,"method":"A.b","params":[]}',
    ]) {
      const client = await Client.open();
      client.ws.send(text);
      expect((await client.closedWith).code).toBe(1007);
    }
    expect((await good.call('Test.echo'))['result']).toBeDefined();
  });

  it('closes every client when the browser goes, and answers 503 after', async () => {
    const agent = await Client.open();
    browser.crash();
    expect((await agent.closedWith).code).toBe(1011);
    expect((await http('GET', '/json/version')).status).toBe(503);
    expect(relay.runnerConnection().closed).toBe(true);
  });
});
