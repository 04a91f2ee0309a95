/**
 * The bridge and the HTTP routes end to end: a real node:http server, real ws clients, and a fake
 * RFB server on a temporary Unix socket that records what reached "the desktop".
 */
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TakeoverBroker } from './broker.ts';
import { startTakeoverServer, type TakeoverServer } from './http.ts';
import { handshake, messages, type OpenedViewer, openViewer } from './testing/rfb-client.ts';
import { type FakeRfbServer, type RfbClientConnection, startFakeRfbServer } from './testing/rfb-server.ts';
import { CLOSE_CODES } from './types.ts';

let dir: string;
let vnc: FakeRfbServer;
let broker: TakeoverBroker;
let server: TakeoverServer;
const viewers: OpenedViewer[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-takeover-'));
  vnc = await startFakeRfbServer(join(dir, 'vnc.sock'), { width: 64, height: 32 });
  broker = new TakeoverBroker();
  await writeFile(join(dir, 'takeover.js'), 'console.log(1)');
  server = await startTakeoverServer({ broker, assetsDir: dir, heartbeatMs: 0 });
});

afterEach(async () => {
  for (const v of viewers.splice(0)) v.ws.terminate();
  broker.close();
  await server.close();
  await vnc.close();
  await rm(dir, { recursive: true, force: true });
});

function open(vncSocketPath = vnc.path): { id: string; token: string; done: Promise<'completed'> } {
  const { takeover, done } = broker.request({
    sandboxId: 'sb1',
    reason: 'Log in to <b>Example</b>',
    label: 'Example & co',
    timeoutMs: 60_000,
    vncSocketPath,
  });
  const token = new URL(broker.linkFor(takeover.id)!).searchParams.get('token')!;
  return { id: takeover.id, token, done };
}

function streamUrl(id: string, token?: string, viewer?: string): string {
  const url = new URL(`/v1/takeovers/${id}/stream`, server.url.replace('http', 'ws'));
  if (token !== undefined) url.searchParams.set('token', token);
  if (viewer) url.searchParams.set('viewer', viewer);
  return url.href;
}

async function viewer(url: string, origin?: string): Promise<OpenedViewer> {
  const v = await openViewer(url, origin ? { origin } : {});
  viewers.push(v);
  await handshake(v);
  return v;
}

async function refusedStatus(url: string, origin?: string): Promise<number> {
  const error = await openViewer(url, origin ? { origin } : {}).then(
    (v) => {
      viewers.push(v);
      return undefined;
    },
    (e: { status?: number }) => e,
  );
  return error?.status ?? 0;
}

/** Resolves when the desktop side has received a message of `type` on this connection. */
function received(connection: RfbClientConnection, type: number): Promise<void> {
  if (connection.messages.some((m) => m.type === type)) return Promise.resolve();
  return new Promise((resolve) => {
    const on = (m: { type: number }): void => {
      if (m.type !== type) return;
      connection.off('message', on);
      resolve();
    };
    connection.on('message', on);
  });
}

/**
 * The message types each desktop connection got, for those that got any (the runner's spares get
 * none), longest first: which connection a viewer lands on depends on whether a spare was ready.
 */
function desktops(): number[][] {
  return vnc.connections
    .map((c) => c.messages.map((m) => m.type))
    .filter((types) => types.length > 0)
    .sort((a, b) => b.length - a.length);
}

/** Resolves once `count` desktop connections have had an update request each. */
async function updateRequestsOn(count: number): Promise<number[][]> {
  await expect.poll(() => desktops().filter((types) => types.includes(3)).length).toBe(count);
  return desktops();
}

describe('stream', () => {
  it('bridges a viewer to the desktop: framebuffer out, input in', async () => {
    const { id, token } = open();
    const v = await viewer(streamUrl(id, token));
    v.ws.send(Buffer.concat([messages.key(0x61), messages.update(0, 0, 64, 32)]));
    const header = await v.bytes.read(16);
    expect(header.readUInt16BE(8)).toBe(64);
    const pixels = await v.bytes.read(64 * 32 * 4);
    expect(pixels.length).toBe(64 * 32 * 4);
    expect(await updateRequestsOn(1)).toEqual([[4, 3]]);
    expect(broker.get(id)?.state).toBe('active');
  });

  it('drops key, pointer and clipboard from a second viewer, and forwards its update requests', async () => {
    const { id, token } = open();
    const first = await viewer(streamUrl(id, token));
    first.ws.send(Buffer.concat([messages.pointer(1, 1), messages.update(0, 0, 1, 1)]));
    await updateRequestsOn(1);
    const second = await viewer(streamUrl(id, token));
    second.ws.send(messages.key(0x62));
    second.ws.send(messages.pointer(5, 5));
    second.ws.send(messages.cutText('secret'));
    second.ws.send(messages.update(0, 0, 1, 1));
    expect(await updateRequestsOn(2)).toEqual([[5, 3], [3]]);
    expect(broker.get(id)?.viewers).toBe(2);
  });

  it('a second viewer on a prepared connection is view-only too', async () => {
    const { id, token } = open();
    await expect.poll(() => server.isPrepared(id)).toBe(true);
    const first = await viewer(streamUrl(id, token));
    first.ws.send(Buffer.concat([messages.key(0x61), messages.update(0, 0, 1, 1)]));
    await updateRequestsOn(1);
    // The first viewer took the prepared connection; the runner prepares the next one.
    await expect.poll(() => server.isPrepared(id)).toBe(true);
    const before = vnc.connections.length;
    const second = await viewer(streamUrl(id, token));
    second.ws.send(Buffer.concat([messages.key(0x62), messages.pointer(5, 5), messages.update(0, 0, 1, 1)]));
    expect(await updateRequestsOn(2)).toEqual([[4, 3], [3]]);
    // Both were bridged to connections opened before they arrived.
    expect(vnc.connections.length).toBeGreaterThanOrEqual(before);
    expect(vnc.connections.slice(0, before).filter((c) => c.messages.length)).toHaveLength(2);
  });

  it('gives control back to the same page after its socket dropped, not to the watcher', async () => {
    const { id, token } = open();
    const key = 'page-key-0123456789';
    const user = await viewer(streamUrl(id, token, key));
    const watcher = await viewer(streamUrl(id, token, 'other-key-0123456789'));
    watcher.ws.send(Buffer.concat([messages.key(0x63), messages.update(0, 0, 1, 1)]));
    await updateRequestsOn(1);
    const userAgain = await viewer(streamUrl(id, token, key));
    expect((await user.closed).code).toBe(CLOSE_CODES.replaced);
    userAgain.ws.send(Buffer.concat([messages.key(0x64), messages.update(0, 0, 1, 1)]));
    expect(await updateRequestsOn(2)).toEqual([[4, 3], [3]]);
  });

  it('refuses a missing or wrong token with 401/403 before a byte reaches VNC', async () => {
    const { id, token } = open();
    expect(await refusedStatus(streamUrl(id))).toBe(401);
    expect(
      await refusedStatus(streamUrl(id, `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}`)),
    ).toBe(403);
    expect(await refusedStatus(streamUrl('tk_unknown', token))).toBe(404);
    // The runner's own prepared connection is the only one, and nothing was relayed to it.
    expect(vnc.connections.length).toBeLessThanOrEqual(1);
    expect(desktops()).toEqual([]);
  });

  it('refuses another origin, accepts its own', async () => {
    const { id, token } = open();
    expect(await refusedStatus(streamUrl(id, token), 'http://evil.example')).toBe(403);
    expect(desktops()).toEqual([]);
    const v = await viewer(streamUrl(id, token), server.url);
    v.ws.send(messages.update(0, 0, 1, 1));
    expect(await updateRequestsOn(1)).toEqual([[3]]);
  });

  it('refuses a symlink or a plain file at the socket path, and a peer that is not VNC', async () => {
    const link = join(dir, 'link.sock');
    await symlink(vnc.path, link);
    const linked = open(link);
    expect(await refusedStatus(streamUrl(linked.id, linked.token))).toBe(503);
    broker.cancelAllFor('sb1');
    const file = join(dir, 'file.sock');
    await writeFile(file, '');
    const plain = open(file);
    expect(await refusedStatus(streamUrl(plain.id, plain.token))).toBe(503);
    expect(vnc.connections).toHaveLength(0);

    broker.cancelAllFor('sb1');
    const seen: Buffer[] = [];
    const http = createServer((s) => {
      s.on('data', (d) => seen.push(d));
      s.on('error', () => {});
      s.write('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    const httpPath = join(dir, 'http.sock');
    await new Promise<void>((r) => http.listen(httpPath, r));
    const other = open(httpPath);
    expect(await refusedStatus(streamUrl(other.id, other.token))).toBe(503);
    expect(seen).toHaveLength(0);
    http.close();
  });

  it('disconnects a viewer that sends a malformed message; the takeover stays open', async () => {
    const { id, token } = open();
    const v = await viewer(streamUrl(id, token));
    v.ws.send(Buffer.from([200, 0, 0, 0]));
    expect((await v.closed).code).toBe(CLOSE_CODES.protocolViolation);
    expect(broker.get(id)?.state).toBe('active');
    const big = await viewer(streamUrl(id, token));
    const head = Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]);
    head.writeUInt32BE(2 * 1024 * 1024, 4);
    big.ws.send(head);
    expect((await big.closed).code).toBe(CLOSE_CODES.protocolViolation);
    expect(broker.get(id)?.viewers).toBe(0);
  });

  it('closes viewers when the takeover completes, then answers 410', async () => {
    const { id, token, done } = open();
    const v = await viewer(streamUrl(id, token));
    broker.complete(id, token);
    await expect(done).resolves.toBe('completed');
    expect((await v.closed).code).toBe(CLOSE_CODES.completed);
    expect(await refusedStatus(streamUrl(id, token))).toBe(410);
    const page = await fetch(`${server.url}/takeover/${id}?token=${token}`);
    expect(page.status).toBe(410);
  });

  it('closes the viewer when the desktop goes away', async () => {
    const { id, token } = open();
    const v = await viewer(streamUrl(id, token));
    for (const c of vnc.connections) c.socket.destroy();
    expect((await v.closed).code).toBe(CLOSE_CODES.desktopGone);
  });
});

describe('page and actions', () => {
  it('serves the page with the reason escaped, strict headers, and no secret in it', async () => {
    const { id, token } = open();
    const response = await fetch(`${server.url}/takeover/${id}?token=${token}`);
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('Log in to &lt;b&gt;Example&lt;/b&gt;');
    expect(html).toContain('Example &amp; co');
    expect(html).not.toContain('<b>Example');
    expect(html).not.toContain(token);
    expect(html).not.toContain('vnc.sock');
    expect(response.headers.get('content-security-policy')).toMatch(/default-src 'none'.*script-src 'self'/);
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect((await fetch(`${server.url}/takeover/${id}`)).status).toBe(401);
    expect((await fetch(`${server.url}/takeover/${id}?token=nope`)).status).toBe(403);
  });

  it('serves the bundled assets, and nothing else from that folder', async () => {
    const js = await fetch(`${server.url}/takeover/assets/takeover.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('content-type')).toContain('javascript');
    expect((await fetch(`${server.url}/takeover/assets/vnc.sock`)).status).toBe(404);
    expect((await fetch(`${server.url}/takeover/assets/..%2Fvnc.sock`)).status).toBe(404);
    // Found by the API fuzz (runner/api/app.fuzz.test.ts): these reached Object.prototype, a 500.
    for (const name of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect((await fetch(`${server.url}/takeover/assets/${name}`)).status, name).toBe(404);
    }
  });

  it('completes with the token in a JSON body; refuses a wrong one, another origin, a GET', async () => {
    const { id, token, done } = open();
    const url = `${server.url}/v1/takeovers/${id}/complete`;
    expect((await fetch(url, { method: 'POST', body: JSON.stringify({ token: 'x' }) })).status).toBe(403);
    expect((await fetch(url, { method: 'POST' })).status).toBe(401);
    const foreign = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ token }),
      headers: { origin: 'http://evil.example' },
    });
    expect(foreign.status).toBe(403);
    expect((await fetch(url)).status).toBe(405);
    const ok = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ token }),
      headers: { origin: server.url },
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ takeover: { id, state: 'completed' } });
    await expect(done).resolves.toBe('completed');
    expect((await fetch(url, { method: 'POST', body: JSON.stringify({ token }) })).status).toBe(410);
  });

  it('cancels with the token in the query string', async () => {
    const { id, token, done } = open();
    const response = await fetch(`${server.url}/v1/takeovers/${id}/cancel?token=${token}`, {
      method: 'POST',
    });
    expect(response.status).toBe(200);
    await expect(done).rejects.toMatchObject({ code: 'takeover_cancelled' });
  });
});
