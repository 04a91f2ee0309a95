/**
 * The bridge and the HTTP routes end to end: a real node:http server, real ws clients, and a fake
 * RFB server on a temporary Unix socket that records what reached "the desktop".
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TakeoverBroker } from './broker.ts';
import { FIRST_REQUESTS_TAG, firstRequests } from './first-requests.ts';
import { startTakeoverServer, type TakeoverServer } from './http.ts';
import { deferred } from './testing/deferred.ts';
import { handshake, messages, type OpenedViewer, openViewer } from './testing/rfb-client.ts';
import { type FakeRfbServer, startFakeRfbServer } from './testing/rfb-server.ts';
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
  // Spares that send nothing past ClientInit: every viewer's own requests reach "the desktop".
  // The first update asked for ahead has its own tests below.
  server = await startTakeoverServer({ broker, assetsDir: dir, heartbeatMs: 0, firstUpdateAhead: false });
});

afterEach(async () => {
  for (const v of viewers.splice(0)) v.ws.terminate();
  broker.close();
  await server.close();
  await vnc.close();
  await rm(dir, { recursive: true, force: true });
});

function open(
  vncSocketPath = vnc.path,
  room: { ready?: Promise<void>; shown?: Promise<void>; onStreaming?: () => void } = {},
): { id: string; token: string; done: Promise<'completed'> } {
  const { takeover, done } = broker.request({
    sandboxId: 'sb1',
    reason: 'Log in to <b>Example</b>',
    label: 'Example & co',
    timeoutMs: 60_000,
    vncSocketPath,
    ...room,
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

describe('stream and the clean room', () => {
  it('connects no viewer before the fresh page is shown', async () => {
    const shown = deferred();
    const ready = deferred();
    const { id, token } = open(vnc.path, { shown: shown.promise, ready: ready.promise });
    let opened = false;
    const opening = viewer(streamUrl(id, token)).then((v) => {
      opened = true;
      return v;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(opened).toBe(false);
    shown.resolve();
    const v = await opening;
    v.ws.send(messages.update(0, 0, 1, 1));
    expect(await updateRequestsOn(1)).toEqual([[3]]);
  });

  it("shows the screen once the page is shown, and holds the controller's input, in order, until the room is ready", async () => {
    const shown = deferred();
    const ready = deferred();
    shown.resolve();
    let streaming = 0;
    const { id, token } = open(vnc.path, {
      shown: shown.promise,
      ready: ready.promise,
      onStreaming: () => streaming++,
    });
    const v = await viewer(streamUrl(id, token));
    expect(streaming).toBe(0);
    v.ws.send(Buffer.concat([messages.key(0x61), messages.update(0, 0, 64, 32), messages.pointer(2, 2)]));
    v.ws.send(messages.cutText('held'));
    // The screen comes: the update request went through and was answered, and the takeover heard.
    expect((await v.bytes.read(16)).readUInt16BE(8)).toBe(64);
    await expect.poll(() => streaming).toBe(1);
    expect(await updateRequestsOn(1)).toEqual([[3]]);
    ready.resolve();
    await expect.poll(() => desktops()[0]?.length).toBe(4);
    expect(desktops()).toEqual([[3, 4, 5, 6]]);
    // From then on input goes straight through.
    v.ws.send(messages.key(0x62));
    await expect.poll(() => desktops()).toEqual([[3, 4, 5, 6, 4]]);
    v.ws.send(messages.update(0, 0, 64, 32));
    await v.bytes.read(16 + 64 * 32 * 4);
    expect(streaming).toBe(1);
  });

  it('never writes the held input when the room fails', async () => {
    const shown = deferred();
    const ready = deferred();
    shown.resolve();
    const { id, token } = open(vnc.path, { shown: shown.promise, ready: ready.promise });
    const v = await viewer(streamUrl(id, token));
    v.ws.send(Buffer.concat([messages.key(0x61), messages.update(0, 0, 1, 1)]));
    await updateRequestsOn(1);
    ready.reject(new Error('the freeze failed'));
    await ready.promise.catch(() => {});
    v.ws.send(Buffer.concat([messages.key(0x62), messages.update(0, 0, 1, 1)]));
    await expect.poll(() => desktops()[0]?.filter((t) => t === 3).length).toBe(2);
    expect(desktops()).toEqual([[3, 3]]);
  });
});

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

describe('prepared connections', () => {
  const openDesktops = () => vnc.connections.filter((c) => !c.socket.destroyed);

  it('the prepared connection closes when the takeover ends, and when the sandbox goes', async () => {
    const first = open();
    await expect.poll(() => server.isPrepared(first.id)).toBe(true);
    expect(openDesktops()).toHaveLength(1);
    broker.complete(first.id, first.token);
    await expect.poll(() => openDesktops().length).toBe(0);
    expect(server.isPrepared(first.id)).toBe(false);

    const second = open();
    await expect.poll(() => server.isPrepared(second.id)).toBe(true);
    const v = await viewer(streamUrl(second.id, second.token));
    await expect.poll(() => server.isPrepared(second.id)).toBe(true);
    expect(openDesktops()).toHaveLength(2);
    broker.cancelAllFor('sb1');
    expect((await v.closed).code).toBe(CLOSE_CODES.sandboxGone);
    await expect.poll(() => openDesktops().length).toBe(0);
  });

  it('a viewer gets its own takeover’s desktop, never another’s prepared one', async () => {
    const other = await startFakeRfbServer(join(dir, 'other.sock'), { width: 48, height: 24 });
    try {
      const mine = open();
      const { takeover } = broker.request({
        sandboxId: 'sb2',
        reason: 'the other sandbox',
        timeoutMs: 60_000,
        vncSocketPath: other.path,
      });
      const theirs = {
        id: takeover.id,
        token: new URL(broker.linkFor(takeover.id)!).searchParams.get('token')!,
      };
      await expect.poll(() => server.isPrepared(mine.id) && server.isPrepared(theirs.id)).toBe(true);
      // The other takeover's token opens nothing of this one, prepared or not.
      expect(await refusedStatus(streamUrl(mine.id, theirs.token))).toBe(403);
      const a = await openViewer(streamUrl(theirs.id, theirs.token));
      viewers.push(a);
      expect(await handshake(a)).toEqual({ width: 48, height: 24 });
      const b = await openViewer(streamUrl(mine.id, mine.token));
      viewers.push(b);
      expect(await handshake(b)).toEqual({ width: 64, height: 32 });
    } finally {
      await other.close();
    }
  });

  it('answers a 3.3 and a 3.7 viewer’s handshake as the RFB versions say', async () => {
    const { id, token } = open();
    for (const minor of [3, 7]) {
      await expect.poll(() => server.isPrepared(id)).toBe(true);
      const v = await openViewer(streamUrl(id, token));
      viewers.push(v);
      expect((await v.bytes.read(12)).toString()).toBe('RFB 003.008\n');
      v.ws.send(Buffer.from(`RFB 003.00${minor}\n`));
      if (minor === 3) {
        expect((await v.bytes.read(4)).readUInt32BE(0)).toBe(1);
      } else {
        expect([...(await v.bytes.read(2))]).toEqual([1, 1]);
        v.ws.send(Buffer.from([1]));
      }
      v.ws.send(Buffer.from([0]));
      // 3.7 sends no SecurityResult after None: ServerInit comes next.
      expect((await v.bytes.read(24)).readUInt16BE(0)).toBe(64);
      expect((await v.bytes.read(11)).toString()).toBe('grexal-fake');
      v.ws.send(messages.update(0, 0, 1, 1));
      expect((await v.bytes.read(16)).readUInt16BE(0)).toBe(0);
    }
  });

  it('pipelined: the whole server handshake comes first; a viewer that then does not speak 3.8 is dropped', async () => {
    const { id, token } = open();
    await expect.poll(() => server.isPrepared(id)).toBe(true);
    const url = `${streamUrl(id, token)}&handshake=pipelined`;
    const v = await openViewer(url);
    viewers.push(v);
    // Nothing sent yet, and the greeting, security, SecurityResult and ServerInit are all there.
    const all = await v.bytes.read(12 + 2 + 4 + 24 + 11);
    expect(all.toString('latin1', 0, 12)).toBe('RFB 003.008\n');
    expect([...all.subarray(12, 18)]).toEqual([1, 1, 0, 0, 0, 0]);
    expect(all.readUInt16BE(18)).toBe(64);
    v.ws.send(
      Buffer.concat([
        Buffer.from('RFB 003.008\n'),
        Buffer.from([1, 0]),
        messages.key(0x61),
        messages.update(0, 0, 64, 32),
      ]),
    );
    expect((await v.bytes.read(16)).readUInt16BE(8)).toBe(64);
    expect(await updateRequestsOn(1)).toEqual([[4, 3]]);

    await expect.poll(() => server.isPrepared(id)).toBe(true);
    const old = await openViewer(url);
    viewers.push(old);
    await old.bytes.read(12 + 6 + 35);
    old.ws.send(Buffer.from('RFB 003.007\n'));
    expect((await old.closed).code).toBe(CLOSE_CODES.protocolViolation);
  });
});

describe('first update ahead', () => {
  /** This file's server with its spares asking for the first frame ahead (the default). */
  async function withAhead(): Promise<void> {
    await server.close();
    server = await startTakeoverServer({ broker, assetsDir: dir, heartbeatMs: 0 });
  }
  const ahead = firstRequests(Buffer.from([0, 64, 0, 32]));
  const aheadUrl = (id: string, token: string, key?: string) =>
    `${streamUrl(id, token, key)}&handshake=pipelined&first=${FIRST_REQUESTS_TAG}`;
  const handshakeBytes = 12 + 6 + 24 + 11;
  const frameBytes = 16 + 64 * 32 * 4;
  /** The viewer's side of a pipelined 3.8 handshake, then `rest`, in one message as noVNC's would come. */
  const answer = (v: OpenedViewer, rest: Buffer) =>
    v.ws.send(Buffer.concat([Buffer.from('RFB 003.008\n'), Buffer.from([1, 0]), rest]));

  it('sends the frame with ServerInit, before the viewer asks; its identical requests are checked, not forwarded', async () => {
    await withAhead();
    let streaming = 0;
    const { id, token } = open(vnc.path, { onStreaming: () => streaming++ });
    await expect.poll(() => vnc.connections[0]?.messages.length).toBe(3);
    const v = await openViewer(aheadUrl(id, token));
    viewers.push(v);
    // The whole handshake and the first frame, and the viewer has sent nothing yet.
    const all = await v.bytes.read(handshakeBytes + frameBytes);
    expect(all.readUInt16BE(handshakeBytes + 8)).toBe(64);
    expect(streaming).toBe(1);
    answer(v, Buffer.concat([ahead, messages.key(0x61), messages.update(0, 0, 64, 32, true)]));
    expect((await v.bytes.read(16)).readUInt16BE(8)).toBe(64);
    // What reached the desktop: the runner's requests once, then the viewer's own input and request.
    expect(vnc.connections[0]!.messages.map((m) => m.type)).toEqual([0, 2, 3, 4, 3]);
    expect(Buffer.concat(vnc.connections[0]!.messages.slice(0, 3).map((m) => m.bytes))).toEqual(ahead);
  });

  it('before the screen may be shown: the handshake at once, nothing of the screen, nothing written to the desktop', async () => {
    await withAhead();
    const shown = deferred();
    const ready = deferred();
    const { id, token } = open(vnc.path, { shown: shown.promise, ready: ready.promise });
    await expect.poll(() => server.isPrepared(id)).toBe(true);
    const v = await openViewer(aheadUrl(id, token));
    viewers.push(v);
    await v.bytes.read(handshakeBytes);
    // The page's requests, its first key, and one request too many: none reaches the desktop yet.
    answer(v, Buffer.concat([ahead, messages.key(0x61), messages.update(0, 0, 64, 32)]));
    const got: Buffer[] = [];
    v.ws.on('message', (data) => got.push(data as Buffer));
    await new Promise((resolve) => setTimeout(resolve, 200));
    // (Its connection, and the next spare, which asks for nothing before the screen either.)
    expect(vnc.connections.map((c) => c.messages.length)).toEqual([0, 0]);
    expect(got).toEqual([]);
    shown.resolve();
    // Then the runner's requests go first, the viewer's own update request after them (the key
    // waits for the room), and the frame comes.
    expect((await v.bytes.read(16)).readUInt16BE(8)).toBe(64);
    await expect.poll(() => vnc.connections[0]!.messages.map((m) => m.type)).toEqual([0, 2, 3, 3]);
    ready.resolve();
    await expect.poll(() => vnc.connections[0]!.messages.map((m) => m.type)).toEqual([0, 2, 3, 3, 4]);
  });

  it('closes a viewer that waited for the screen when the room cannot be made', async () => {
    await withAhead();
    const shown = deferred();
    const { id, token } = open(vnc.path, { shown: shown.promise, ready: shown.promise });
    await expect.poll(() => server.isPrepared(id)).toBe(true);
    const v = await openViewer(aheadUrl(id, token));
    viewers.push(v);
    await v.bytes.read(handshakeBytes);
    answer(v, ahead);
    shown.reject(new Error('the fresh page failed'));
    expect((await v.closed).code).toBe(CLOSE_CODES.desktopGone);
    expect(vnc.connections[0]!.messages).toEqual([]);
  });

  it('disconnects a viewer that then asks for something else, and asks nothing ahead for the next', async () => {
    await withAhead();
    const { id, token } = open();
    await expect.poll(() => vnc.connections[0]?.messages.length).toBe(3);
    const liar = await openViewer(aheadUrl(id, token));
    viewers.push(liar);
    await liar.bytes.read(handshakeBytes + frameBytes);
    answer(liar, Buffer.concat([ahead.subarray(0, 20), Buffer.from([2, 0, 0, 1, 0, 0, 0, 0])]));
    expect((await liar.closed).code).toBe(CLOSE_CODES.protocolViolation);
    expect(broker.get(id)?.state).toBe('active');
    // The next viewer, though it says the same, gets a plain connection and its own requests through.
    await expect.poll(() => server.isPrepared(id)).toBe(true);
    const next = await openViewer(aheadUrl(id, token));
    viewers.push(next);
    await next.bytes.read(handshakeBytes);
    answer(next, messages.update(0, 0, 64, 32));
    expect((await next.bytes.read(16)).readUInt16BE(8)).toBe(64);
    // Open now: its connection, with its own request only, and a plain spare for the next viewer.
    await expect
      .poll(() =>
        vnc.connections.filter((c) => !c.socket.destroyed).map((c) => c.messages.map((m) => m.type)),
      )
      .toEqual([[3], []]);
  });

  it('gives a viewer that does not say it asks the same a connection of its own, with nothing sent ahead', async () => {
    await withAhead();
    const { id, token } = open();
    await expect.poll(() => vnc.connections[0]?.messages.length).toBe(3);
    const v = await viewer(streamUrl(id, token));
    v.ws.send(messages.update(0, 0, 64, 32));
    expect((await v.bytes.read(16)).readUInt16BE(8)).toBe(64);
    // The spare that asked ahead still waits for a page; the viewer's desktop got only its request.
    expect(vnc.connections.map((c) => c.messages.map((m) => m.type))).toEqual([[0, 2, 3], [3]]);
  });

  it('keeps a second viewer view-only on a connection that asked ahead', async () => {
    await withAhead();
    const { id, token } = open();
    await expect.poll(() => vnc.connections[0]?.messages.length).toBe(3);
    const first = await openViewer(aheadUrl(id, token, 'first-key-0123456789'));
    viewers.push(first);
    await first.bytes.read(handshakeBytes + frameBytes);
    answer(first, ahead);
    await expect.poll(() => vnc.connections[1]?.messages.length).toBe(3);
    const second = await openViewer(aheadUrl(id, token, 'second-key-0123456789'));
    viewers.push(second);
    await second.bytes.read(handshakeBytes + frameBytes);
    answer(
      second,
      Buffer.concat([ahead, messages.key(0x62), messages.pointer(5, 5), messages.update(0, 0, 1, 1)]),
    );
    await expect.poll(() => vnc.connections[1]!.messages.length).toBe(4);
    expect(vnc.connections[1]!.messages.map((m) => m.type)).toEqual([0, 2, 3, 3]);
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
    // The boot script opens the stream at once; the CSP allows it by its hash and nothing else inline.
    const inline = /<script>(.*?)<\/script>/s.exec(html)![1]!;
    const hash = createHash('sha256').update(inline).digest('base64');
    expect(response.headers.get('content-security-policy')).toContain(`script-src 'self' 'sha256-${hash}'`);
    expect(inline).toContain('handshake');
    expect((await fetch(`${server.url}/takeover/${id}`)).status).toBe(401);
    expect((await fetch(`${server.url}/takeover/${id}?token=nope`)).status).toBe(403);
  });

  it('links the bundle by version, which a browser may keep; an unversioned link revalidates', async () => {
    const { id, token } = open();
    const html = await (await fetch(`${server.url}/takeover/${id}?token=${token}`)).text();
    const src = /src="(assets\/takeover\.js\?v=[^"]+)"/.exec(html)![1]!;
    const kept = await fetch(new URL(src, `${server.url}/takeover/`));
    expect(kept.headers.get('cache-control')).toBe('private, max-age=31536000, immutable');
    expect(await kept.text()).toBe('console.log(1)');
    const plain = await fetch(`${server.url}/takeover/assets/takeover.js`);
    expect(plain.headers.get('cache-control')).toBe('no-cache');
    const stale = await fetch(`${server.url}/takeover/assets/takeover.js?v=old`);
    expect(stale.headers.get('cache-control')).toBe('no-cache');
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
