import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { FakeChromium } from './fake-chromium.ts';
import { CdpRelay } from './relay.ts';

let dir: string;
let browser: FakeChromium;
let relay: CdpRelay;
let socketPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'spare-test-'));
  socketPath = join(dir, 'cdp.sock');
  browser = new FakeChromium();
  relay = await CdpRelay.start(socketPath, { upstream: browser, logger: pino({ level: 'silent' }) });
});

afterEach(async () => {
  await relay.close();
  await rm(dir, { recursive: true, force: true });
});

function list(): Promise<Array<{ id: string }>> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: '/json/list', headers: { host: '127.0.0.1:9222' } }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on('end', () => resolve(JSON.parse(body)));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An agent's browser-level client: every message it got, as text. */
async function agent() {
  const ws = new WebSocket(`ws+unix://${socketPath}:/devtools/browser/${relay.browserId}`, {
    headers: { host: '127.0.0.1:9222' },
  });
  const seen: string[] = [];
  ws.on('message', (data) => seen.push(String(data)));
  await new Promise((resolve) => ws.once('open', resolve));
  let nextId = 1;
  const call = async (method: string, params: Record<string, unknown> = {}) => {
    const id = nextId++;
    ws.send(JSON.stringify({ id, method, params }));
    await expect.poll(() => seen.some((m) => JSON.parse(m).id === id)).toBe(true);
    return JSON.parse(seen.find((m) => JSON.parse(m).id === id)!);
  };
  return { ws, seen, call };
}

describe('the spare tab over a fake browser', () => {
  it('is made in the background, hidden from an agent that watches while it is made, and refused by id', async () => {
    const watcher = await agent();
    await watcher.call('Target.setDiscoverTargets', { discover: true });
    relay.spare.enable();
    // A call of the agent's during the making: answered after it, in order, screened.
    const during = watcher.call('Target.getTargets');
    expect(await relay.spare.ready()).toBe(true);
    const spare = relay.spare.current!;
    expect(browser.methods('Target.createTarget').at(-1)?.params).toEqual({
      url: 'about:blank',
      background: true,
    });
    const listed = (await during).result.targetInfos.map((t: { targetId: string }) => t.targetId);
    expect(listed).toEqual(['T1']);
    expect(
      (await watcher.call('Target.attachToTarget', { targetId: spare.targetId, flatten: true })).error,
    ).toEqual({
      code: -32602,
      message: 'No target with given id found',
    });
    expect((await list()).map((t) => t.id)).toEqual(['T1']);
    // The fake announced it to the agent's session before answering with its id: held, then dropped.
    expect(watcher.seen.filter((m) => m.includes(spare.targetId))).toEqual([]);
    expect(browser.methods('Target.attachToTarget').length).toBe(0);
    watcher.ws.close();
  });

  it('is taken once, visible from then on, and made again when agents are let back in', async () => {
    relay.spare.enable();
    expect(await relay.spare.ready()).toBe(true);
    const first = relay.spare.current!.targetId;
    relay.cut('takeover');
    expect((await relay.spare.take())?.targetId).toBe(first);
    expect(await relay.spare.take()).toBeUndefined();
    relay.resume();
    expect(await relay.spare.ready()).toBe(true);
    const second = relay.spare.current!.targetId;
    expect(second).not.toBe(first);
    const listed = (await list()).map((t) => t.id);
    expect(listed).toContain(first);
    expect(listed).not.toContain(second);
  });

  it('is waited for when a takeover comes while it is being made, and not kept once closed', async () => {
    relay.spare.enable();
    relay.cut('takeover');
    const taken = await relay.spare.take();
    expect(taken?.targetId).toEqual(expect.any(String));
    relay.resume();
    expect(await relay.spare.ready()).toBe(true);
    // Closed behind the relay's back (a crash, say): the next resume makes another.
    const gone = relay.spare.current!.targetId;
    browser.emit('', 'Target.targetDestroyed', { targetId: gone });
    relay.cut('takeover');
    expect(await relay.spare.take()).toBeUndefined();
    relay.resume();
    expect(await relay.spare.ready()).toBe(true);
    expect(relay.spare.current?.targetId).not.toBe(gone);
  });

  it('is not made unless enabled (a local browser in grexal dev has none)', async () => {
    relay.cut('takeover');
    relay.resume();
    expect(await relay.spare.ready()).toBe(false);
    expect(browser.methods('Target.createTarget')).toEqual([]);
  });
});
