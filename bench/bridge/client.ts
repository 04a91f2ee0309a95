/**
 * A tight RFB viewer for the bench, the same over every path: the handshake through a byte queue,
 * then only message headers are read (updates.ts) and pixel data counted, so the client costs as
 * little as possible and the same everywhere. Sockets read into one reusable buffer: Node's
 * default (a fresh 64 KiB buffer per read) would make the client, not the path, the bottleneck.
 */
import { connect } from 'node:net';
import { WebSocket } from 'ws';
import { ByteQueue } from '../../runner/takeover/testing/rfb-client.ts';
import { UpdateReader } from './updates.ts';
import { openRawWebSocket } from './ws-raw.ts';

export interface RfbPath {
  readonly name: string;
  /** Sends a FramebufferUpdateRequest; resolves once the whole FramebufferUpdate has arrived. */
  request(message: Buffer): Promise<void>;
  /** Bytes received from the server since the handshake. */
  bytes(): number;
  close(): void;
}

/** The handshake through a byte queue, then an UpdateReader. */
class Session {
  private queue: ByteQueue | undefined = new ByteQueue();
  private reader: UpdateReader | undefined;

  /** `piece` may be a view of a reused buffer: copied only during the handshake. */
  data(piece: Buffer): void {
    if (this.reader) this.reader.push(piece);
    else this.queue!.push(Buffer.from(piece));
  }

  async open(name: string, send: (b: Buffer) => void, close: () => void): Promise<RfbPath> {
    const queue = this.queue!;
    const version = (await queue.read(12)).toString('latin1');
    if (!version.startsWith('RFB 003.')) throw new Error(`not an RFB server: ${JSON.stringify(version)}`);
    send(Buffer.from('RFB 003.008\n'));
    const types = await queue.read((await queue.read(1))[0]!);
    if (!types.includes(1)) throw new Error(`the server offers no security type None (${[...types]})`);
    send(Buffer.from([1]));
    if ((await queue.read(4)).readUInt32BE(0) !== 0) throw new Error('the server refused the handshake');
    send(Buffer.from([1]));
    const init = await queue.read(24);
    await queue.read(init.readUInt32BE(20));
    const reader = new UpdateReader(init[4]! / 8);
    this.reader = reader;
    this.queue = undefined;
    return {
      name,
      request: (message) => {
        const update = reader.nextUpdate();
        send(message);
        return update;
      },
      bytes: () => reader.bytes,
      close,
    };
  }
}

/** A plain byte stream: the Unix socket itself (the limit), or the TCP relay of the reference path. */
export async function streamPath(
  name: string,
  target: { path: string } | { port: number; host: string },
): Promise<RfbPath> {
  const session = new Session();
  const readBuffer = Buffer.allocUnsafe(1024 * 1024);
  const socket = connect({
    ...target,
    onread: {
      buffer: readBuffer,
      callback: (n) => {
        session.data(readBuffer.subarray(0, n));
        return true;
      },
    },
  });
  socket.setNoDelay?.(true);
  socket.on('error', () => {});
  return session.open(
    name,
    (b) => socket.write(b),
    () => socket.destroy(),
  );
}

/** Over the ws library's client (`--client ws`): its message reassembly costs the same on both WebSocket paths. */
export async function webSocketPath(name: string, url: string): Promise<RfbPath> {
  const session = new Session();
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('message', (data: Buffer) => session.data(data));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('error', () => {});
  return session.open(
    name,
    (b) => ws.send(b),
    () => ws.terminate(),
  );
}

/** Over a minimal WebSocket client that parses frames without reassembling them (ws-raw.ts). */
export async function rawWebSocketPath(name: string, url: string): Promise<RfbPath> {
  const session = new Session();
  const ws = await openRawWebSocket(url, (piece) => session.data(piece));
  return session.open(
    name,
    (b) => ws.send(b),
    () => ws.close(),
  );
}

export function updateRequest(x: number, y: number, w: number, h: number, incremental = false): Buffer {
  const b = Buffer.alloc(10);
  b[0] = 3;
  b[1] = incremental ? 1 : 0;
  b.writeUInt16BE(x, 2);
  b.writeUInt16BE(y, 4);
  b.writeUInt16BE(w, 6);
  b.writeUInt16BE(h, 8);
  return b;
}
