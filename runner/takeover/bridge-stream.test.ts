/**
 * The bridge and its routes end to end: the stream and its clean room, who may open it, and what
 * reaches the desktop (fixture: testing/bridge-fixture.ts).
 */
import { symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  broker,
  desktops,
  dir,
  open,
  refusedStatus,
  server,
  streamUrl,
  updateRequestsOn,
  useBridgeFixture,
  viewer,
  vnc,
} from './testing/bridge-fixture.ts';
import { deferred } from './testing/deferred.ts';
import { messages } from './testing/rfb-client.ts';
import { CLOSE_CODES } from './types.ts';

useBridgeFixture();

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
