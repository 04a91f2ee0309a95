/**
 * A tight RFB viewer for the bench, the same over every path: the handshake through a byte queue,
 * then only counting bytes, so the client costs as little as possible and the same everywhere.
 */
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { ByteQueue } from '../../runner/takeover/testing/rfb-client.ts';
import { openRawWebSocket } from './ws-raw.ts';

export interface RfbPath {
  readonly name: string;
  /** Resolves once `bytes` more bytes arrived from the server. */
  request(message: Buffer, bytes: number): Promise<void>;
  close(): void;
}

class Counter {
  queue: ByteQueue | undefined = new ByteQueue();
  private left = 0;
  private done: (() => void) | undefined;

  data(chunk: Buffer): void {
    if (this.queue) {
      this.queue.push(chunk);
      return;
    }
    this.left -= chunk.length;
    if (this.left <= 0 && this.done) {
      const done = this.done;
      this.done = undefined;
      done();
    }
  }

  wait(bytes: number): Promise<void> {
    return new Promise((resolve) => {
      this.left = bytes;
      this.done = resolve;
    });
  }
}

async function handshake(send: (b: Buffer) => void, queue: ByteQueue): Promise<void> {
  const version = (await queue.read(12)).toString('latin1');
  if (!version.startsWith('RFB 003.')) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
  send(Buffer.from('RFB 003.008\n'));
  const count = (await queue.read(1))[0]!;
  await queue.read(count);
  send(Buffer.from([1]));
  await queue.read(4);
  send(Buffer.from([1]));
  const init = await queue.read(24);
  await queue.read(init.readUInt32BE(20));
}

/**
 * A plain byte stream: the Unix socket itself (the limit), or the TCP relay of the reference path.
 * Reads go into one reusable buffer, as in ws-raw.ts: the same client cost on every path.
 */
export async function streamPath(
  name: string,
  target: { path: string } | { port: number; host: string },
): Promise<RfbPath> {
  const counter = new Counter();
  const readBuffer = Buffer.allocUnsafe(1024 * 1024);
  const socket = connect({
    ...target,
    onread: {
      buffer: readBuffer,
      callback: (n) => {
        const view = readBuffer.subarray(0, n);
        counter.data(counter.queue ? Buffer.from(view) : view);
        return true;
      },
    },
  });
  socket.setNoDelay?.(true);
  socket.on('error', () => {});
  await handshake((b) => socket.write(b), counter.queue!);
  counter.queue = undefined;
  return {
    name,
    request: (message, bytes) => {
      const wait = counter.wait(bytes);
      socket.write(message);
      return wait;
    },
    close: () => socket.destroy(),
  };
}

/** Through the ws library's client (`--client ws`): its per-message reassembly costs the same on both WebSocket paths. */
export async function webSocketPath(name: string, url: string, origin?: string): Promise<RfbPath> {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...(origin ? { origin } : {}) });
  const counter = new Counter();
  ws.on('message', (data: Buffer) => counter.data(data));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  await handshake((b) => ws.send(b), counter.queue!);
  counter.queue = undefined;
  return {
    name,
    request: (message, bytes) => {
      const wait = counter.wait(bytes);
      ws.send(message);
      return wait;
    },
    close: () => ws.terminate(),
  };
}

/** The same over a minimal WebSocket client that only counts payload bytes (ws-raw.ts). */
export async function rawWebSocketPath(name: string, url: string): Promise<RfbPath> {
  const counter = new Counter();
  const ws = await openRawWebSocket(url, (piece) => counter.data(counter.queue ? Buffer.from(piece) : piece));
  await handshake((b) => ws.send(b), counter.queue!);
  counter.queue = undefined;
  return {
    name,
    request: (message, bytes) => {
      const wait = counter.wait(bytes);
      ws.send(message);
      return wait;
    },
    close: () => ws.close(),
  };
}

export function updateRequest(x: number, y: number, w: number, h: number): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 3;
  b.writeUInt16BE(x, 2);
  b.writeUInt16BE(y, 4);
  b.writeUInt16BE(w, 6);
  b.writeUInt16BE(h, 8);
  return b;
}
