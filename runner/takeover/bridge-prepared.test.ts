/**
 * The bridge end to end: prepared desktop connections, and the first update asked for ahead
 * (fixture: testing/bridge-fixture.ts).
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIRST_REQUESTS_TAG, firstRequests } from './first-requests.ts';
import {
  broker,
  dir,
  open,
  refusedStatus,
  restartServer,
  server,
  streamUrl,
  updateRequestsOn,
  useBridgeFixture,
  viewer,
  viewers,
  vnc,
} from './testing/bridge-fixture.ts';
import { deferred } from './testing/deferred.ts';
import { handshake, messages, type OpenedViewer, openViewer } from './testing/rfb-client.ts';
import { startFakeRfbServer } from './testing/rfb-server.ts';
import { CLOSE_CODES } from './types.ts';

useBridgeFixture();

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
  const withAhead = restartServer;
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
