/**
 * The spare VNC connection a takeover opens before any viewer: against the fake RFB server on a
 * temporary Unix socket, and a server that offers no security type the bridge allows.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { firstRequests } from './first-requests.ts';
import { askAhead, prepareVnc, VncSpare } from './prepared-vnc.ts';
import { deferred } from './testing/deferred.ts';
import { type FakeRfbServer, startFakeRfbServer } from './testing/rfb-server.ts';

let dir: string;
let vnc: FakeRfbServer;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-prepared-'));
  vnc = await startFakeRfbServer(join(dir, 'vnc.sock'), { width: 64, height: 32 });
});

afterEach(async () => {
  await vnc.close();
  await rm(dir, { recursive: true, force: true });
});

const open = () => vnc.connections.filter((c) => !c.socket.destroyed);

describe('prepareVnc', () => {
  it('does the handshake as a shared client and sends nothing after it', async () => {
    const prepared = await prepareVnc(vnc.path);
    expect(prepared.greeting.toString('latin1', 0, 12)).toBe('RFB 003.008\n');
    expect(prepared.prepared.serverInit.readUInt16BE(0)).toBe(64);
    expect(prepared.prepared.serverInit.readUInt16BE(2)).toBe(32);
    expect(prepared.prepared.serverInit.subarray(24).toString()).toBe('grexal-fake');
    await expect.poll(() => vnc.connections[0]?.shared).toBe(true);
    expect(vnc.connections[0]!.messages).toEqual([]);
    prepared.socket.destroy();
  });

  it('refuses a server that offers no security type None', async () => {
    const path = join(dir, 'auth.sock');
    const server: Server = createServer((s) => {
      s.on('error', () => {});
      s.write('RFB 003.008\n');
      s.once('data', () => s.write(Buffer.from([1, 2])));
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    await expect(prepareVnc(path)).rejects.toMatchObject({ code: 'E_DESKTOP_UNAVAILABLE' });
    server.close();
  });
});

describe('VncSpare', () => {
  it('hands its connection over once, prepares the next, and closes all when the takeover ends', async () => {
    const ended = new AbortController();
    const spare = new VncSpare(vnc.path, { ended: ended.signal, retryMs: 10 });
    await expect.poll(() => spare.isReady).toBe(true);
    const first = spare.take();
    expect(first?.prepared?.serverInit.readUInt16BE(0)).toBe(64);
    await expect.poll(() => spare.isReady).toBe(true);
    const second = spare.take();
    expect(second).toBeDefined();
    expect(second!.socket).not.toBe(first!.socket);
    await expect.poll(() => spare.isReady).toBe(true);
    expect(open()).toHaveLength(3);
    ended.abort();
    // The waiting spare closes; the taken ones are their bridges' to close.
    await expect.poll(() => open().length).toBe(2);
    first!.socket.destroy();
    second!.socket.destroy();
    await expect.poll(() => open().length).toBe(0);
    expect(spare.take()).toBeUndefined();
  });

  it('replaces a spare the server closed', async () => {
    const ended = new AbortController();
    const spare = new VncSpare(vnc.path, { ended: ended.signal, retryMs: 10 });
    await expect.poll(() => spare.isReady).toBe(true);
    vnc.connections[0]!.socket.destroy();
    await expect.poll(() => vnc.connections.length).toBe(2);
    await expect.poll(() => spare.isReady).toBe(true);
    expect(spare.take()?.socket.destroyed).toBe(false);
    ended.abort();
  });

  it('stops reopening after a few spares in a row were closed by the server', async () => {
    const ended = new AbortController();
    const spare = new VncSpare(vnc.path, { ended: ended.signal, retryMs: 1 });
    // The "desktop" drops every client once its handshake is done.
    const dropper = setInterval(() => {
      for (const c of vnc.connections) if (c.shared !== undefined && !c.socket.destroyed) c.socket.destroy();
    }, 5);
    try {
      await expect.poll(() => vnc.connections.length, { timeout: 10_000 }).toBe(6);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(vnc.connections).toHaveLength(6);
      expect(spare.take()).toBeUndefined();
    } finally {
      clearInterval(dropper);
      ended.abort();
    }
  });

  it('holds what the server sends until a viewer takes it and the bridge relays', async () => {
    const ended = new AbortController();
    const spare = new VncSpare(vnc.path, { ended: ended.signal });
    await expect.poll(() => spare.isReady).toBe(true);
    // A bell (type 2), then one after the handover: both kept, in order, for the viewer.
    vnc.connections[0]!.socket.write(Buffer.from([2]));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const taken = spare.take()!;
    vnc.connections[0]!.socket.write(Buffer.from([2, 2]));
    await expect.poll(() => Buffer.concat(taken.prepared!.held).toString('hex')).toBe('020202');
    taken.socket.destroy();
    ended.abort();
  });

  it('asks for the first frame ahead only once the screen may be shown, and only for a viewer that asks the same', async () => {
    const ended = new AbortController();
    const { promise: shown, resolve: show } = deferred();
    const spare = new VncSpare(vnc.path, { ended: ended.signal, shown });
    await expect.poll(() => spare.isReady).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Not shown yet: nothing past ClientInit, so nothing of the screen is encoded for anyone.
    expect(vnc.connections[0]!.messages).toEqual([]);
    show();
    const ahead = firstRequests(Buffer.from([0, 64, 0, 32]));
    await expect.poll(() => vnc.connections[0]!.messages.length).toBe(3);
    expect(Buffer.concat(vnc.connections[0]!.messages.map((m) => m.bytes))).toEqual(ahead);
    // A viewer that will not send the same requests gets no spare (it connects for itself).
    expect(spare.take(false)).toBeUndefined();
    const taken = spare.take(true)!;
    expect(taken.prepared?.ahead).toEqual(ahead);
    // The server's answer, the whole first frame, is held for that viewer.
    await expect.poll(() => taken.prepared!.held.reduce((n, b) => n + b.length, 0)).toBe(vnc.fullFrameBytes);
    taken.socket.destroy();
    ended.abort();
  });

  it('has the next spare ask ahead only once the viewer that took one has had its first frame', async () => {
    const ended = new AbortController();
    const { promise: shown, resolve: show } = deferred();
    const spare = new VncSpare(vnc.path, { ended: ended.signal, shown, nextAheadDelayMs: 1 });
    await expect.poll(() => spare.isReady).toBe(true);
    // A fast page: its viewer takes the spare before the screen may be shown.
    const taken = spare.take(true)!;
    await expect.poll(() => spare.isReady).toBe(true);
    show();
    // The viewer's bridge asks for its own frame once shown (bridge.ts); the server encodes that one.
    await shown;
    askAhead(taken);
    await expect.poll(() => vnc.connections[0]!.messages.length).toBe(3);
    await expect.poll(() => taken.prepared!.held.reduce((n, b) => n + b.length, 0)).toBe(vnc.fullFrameBytes);
    // The next spare asked for nothing: no second frame encoded while the viewer waits for its first.
    expect(vnc.connections[1]!.messages).toEqual([]);
    spare.viewerStarted();
    await expect.poll(() => vnc.connections[1]!.messages.length).toBe(3);
    expect(spare.take(true)?.prepared?.ahead).toEqual(firstRequests(Buffer.from([0, 64, 0, 32])));
    taken.socket.destroy();
    ended.abort();
  });

  it('asks nothing ahead any more once a viewer refused it: the waiting spare is replaced by a plain one', async () => {
    const ended = new AbortController();
    const spare = new VncSpare(vnc.path, { ended: ended.signal, shown: Promise.resolve() });
    await expect.poll(() => vnc.connections[0]?.messages.length).toBe(3);
    spare.stopAhead();
    await expect.poll(() => vnc.connections[0]!.socket.destroyed).toBe(true);
    await expect.poll(() => spare.isReady).toBe(true);
    const plain = spare.take(false)!;
    expect(plain.prepared?.ahead).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(vnc.connections[1]!.messages).toEqual([]);
    plain.socket.destroy();
    ended.abort();
  });
});
