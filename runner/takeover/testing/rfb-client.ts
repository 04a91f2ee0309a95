/** A minimal RFB viewer over a ws WebSocket, for tests: the handshake, then raw messages. */
import { WebSocket } from 'ws';

export class ByteQueue {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake();
  }

  fail(error: Error): void {
    this.failure = error;
    this.waiter?.reject(error);
    this.waiter = undefined;
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.failure && this.size < n) return reject(this.failure);
      this.waiter = { n, resolve, reject };
      this.wake();
    });
  }

  private wake(): void {
    const w = this.waiter;
    if (!w || this.size < w.n) return;
    this.waiter = undefined;
    const all = Buffer.concat(this.chunks, this.size);
    this.chunks = all.length > w.n ? [all.subarray(w.n)] : [];
    this.size -= w.n;
    w.resolve(all.subarray(0, w.n));
  }
}

export interface OpenedViewer {
  ws: WebSocket;
  bytes: ByteQueue;
  closed: Promise<{ code: number; reason: string }>;
}

/** Opens the WebSocket; rejects with the HTTP status when the upgrade is refused. */
export function openViewer(url: string, options: { origin?: string } = {}): Promise<OpenedViewer> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      ...(options.origin ? { origin: options.origin } : {}),
      perMessageDeflate: false,
    });
    const bytes = new ByteQueue();
    const closed = new Promise<{ code: number; reason: string }>((res) => {
      ws.on('close', (code, reason) => {
        bytes.fail(new Error(`closed ${code}`));
        res({ code, reason: reason.toString() });
      });
    });
    ws.on('message', (data) => bytes.push(data as Buffer));
    ws.on('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode }));
      ws.terminate();
    });
    ws.on('error', (error) => reject(error));
    ws.on('open', () => resolve({ ws, bytes, closed }));
  });
}

/** RFB 3.8 with security None; returns the server's framebuffer size. */
export async function handshake(viewer: OpenedViewer): Promise<{ width: number; height: number }> {
  const version = await viewer.bytes.read(12);
  if (version.toString('latin1') !== 'RFB 003.008\n')
    throw new Error(`unexpected greeting ${version.toString()}`);
  viewer.ws.send(Buffer.from('RFB 003.008\n'));
  const count = (await viewer.bytes.read(1))[0]!;
  await viewer.bytes.read(count);
  viewer.ws.send(Buffer.from([1]));
  await viewer.bytes.read(4);
  viewer.ws.send(Buffer.from([0]));
  const init = await viewer.bytes.read(24);
  await viewer.bytes.read(init.readUInt32BE(20));
  return { width: init.readUInt16BE(0), height: init.readUInt16BE(2) };
}

export const messages = {
  key: (keysym: number): Buffer =>
    Buffer.from([
      4,
      1,
      0,
      0,
      (keysym >> 24) & 0xff,
      (keysym >> 16) & 0xff,
      (keysym >> 8) & 0xff,
      keysym & 0xff,
    ]),
  pointer: (x: number, y: number): Buffer => Buffer.from([5, 1, x >> 8, x & 0xff, y >> 8, y & 0xff]),
  update: (x: number, y: number, w: number, h: number, incremental = false): Buffer => {
    const b = Buffer.alloc(10);
    b[0] = 3;
    b[1] = incremental ? 1 : 0;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    b.writeUInt16BE(w, 6);
    b.writeUInt16BE(h, 8);
    return b;
  },
  cutText: (text: string): Buffer => {
    const body = Buffer.from(text, 'latin1');
    const head = Buffer.from([6, 0, 0, 0, 0, 0, 0, 0]);
    head.writeUInt32BE(body.length, 4);
    return Buffer.concat([head, body]);
  },
};
