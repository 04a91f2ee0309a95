/**
 * The bridge's data path with a stand-in WebSocket: bytes arrive intact through the pooled read
 * buffers, and backpressure pauses and resumes each side.
 */
import { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { bridge } from './bridge.ts';
import { connectVnc, type VncConnection } from './vnc-socket.ts';

class FakeWebSocket extends EventEmitter {
  readyState = 1;
  bufferedAmount = 0;
  sent: Buffer[] = [];
  /** Sent but not yet "written": the bridge must not reuse these buffers until their callback ran. */
  pending: Array<{ data: Buffer; cb: (() => void) | undefined }> = [];
  paused = 0;
  resumed = 0;
  send(data: Buffer, _options: unknown, cb?: () => void): void {
    this.pending.push({ data, cb });
  }
  /** Writes what was sent, as a socket would, later: a buffer reused too early shows up corrupted. */
  flush(): void {
    for (const { data, cb } of this.pending.splice(0)) {
      this.sent.push(Buffer.from(data));
      cb?.();
    }
  }
  pause(): void {
    this.paused++;
  }
  resume(): void {
    this.resumed++;
  }
  close(): void {
    this.readyState = 3;
  }
  terminate(): void {
    this.readyState = 3;
  }
  ping(): void {}
  received(): number {
    return [...this.sent, ...this.pending.map((p) => p.data)].reduce((n, b) => n + b.length, 0);
  }
}

let dir: string;
let server: Server;
let peer: Promise<Socket>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-bridge-flow-'));
  let accept!: (s: Socket) => void;
  peer = new Promise((resolve) => {
    accept = resolve;
  });
  server = createServer((s) => {
    s.on('error', () => {});
    s.write('RFB 003.008\n');
    accept(s);
  });
  await new Promise<void>((r) => server.listen(join(dir, 'vnc.sock'), r));
});

afterEach(async () => {
  (await peer).destroy();
  await new Promise<void>((r) => server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
});

/** Polls on the event loop, boundedly, until `done()` holds. */
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (done()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`never happened: ${what}`);
}

function start(ws: FakeWebSocket, vnc: VncConnection, highWaterMarkBytes = 1024 * 1024): EventEmitter {
  const transport = new EventEmitter();
  bridge({
    ws: ws as unknown as WebSocket,
    transport: transport as never,
    vnc,
    controls: () => true,
    highWaterMarkBytes,
    heartbeatMs: 0,
  });
  return transport;
}

describe('bridge data path', () => {
  it('delivers megabytes intact while reusing its read buffers', async () => {
    const vnc = await connectVnc(join(dir, 'vnc.sock'));
    const ws = new FakeWebSocket();
    start(ws, vnc);
    const payload = Buffer.alloc(6 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE((i * 2654435761) >>> 0, i);
    const desktop = await peer;
    desktop.write(payload);
    // Several sends stay in flight while the next reads come in, as with a slow viewer.
    await until(() => {
      if (ws.pending.length >= 4) ws.flush();
      return ws.received() >= 12 + payload.length;
    }, 'all bytes through');
    ws.flush();
    const all = Buffer.concat(ws.sent);
    expect(all.subarray(0, 12).toString()).toBe('RFB 003.008\n');
    expect(all.subarray(12).equals(payload)).toBe(true);
  });

  it('stops reading the desktop while the viewer is behind, and goes on after drain', async () => {
    const vnc = await connectVnc(join(dir, 'vnc.sock'));
    const verdicts: boolean[] = [];
    const onData = vnc.onData;
    vnc.onData = (reader) =>
      onData((chunk, release) => {
        const verdict = reader(chunk, release);
        verdicts.push(verdict);
        return verdict;
      });
    const ws = new FakeWebSocket();
    const transport = start(ws, vnc, 64 * 1024);
    ws.bufferedAmount = 10 * 1024 * 1024;
    const desktop = await peer;
    const payload = Buffer.alloc(4 * 1024 * 1024, 7);
    desktop.write(payload);
    await until(() => verdicts.includes(false), 'the bridge pauses the VNC socket');
    expect(ws.received()).toBeLessThan(12 + payload.length);
    ws.bufferedAmount = 0;
    transport.emit('drain');
    await until(() => {
      ws.flush();
      return ws.received() >= 12 + payload.length;
    }, 'the rest after drain');
  });

  it('pauses the viewer while the desktop does not read, and resumes it on drain', async () => {
    const vnc = await connectVnc(join(dir, 'vnc.sock'));
    const ws = new FakeWebSocket();
    start(ws, vnc);
    const desktop = await peer;
    desktop.pause();
    ws.emit('message', Buffer.from('RFB 003.008\n\x01\x01'), true);
    const request = Buffer.from([3, 0, 0, 0, 0, 0, 0, 1, 0, 1]);
    const burst = Buffer.concat(Array.from({ length: 10_000 }, () => request));
    for (let i = 0; i < 200 && ws.paused === 0; i++) ws.emit('message', Buffer.from(burst), true);
    expect(ws.paused).toBe(1);
    desktop.resume();
    await until(() => ws.resumed === 1, 'the viewer resumed');
  });
});
