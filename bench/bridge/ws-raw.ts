/**
 * A minimal WebSocket client on a raw TCP socket for the bench: the HTTP upgrade, masked binary
 * frames out, and frames in parsed only far enough to count payload bytes, without copying or
 * reassembling them. Its cost per byte is a fraction of a general client's, so the path under
 * test, not the client, sets the pace. Pings are answered (the bridge drops silent viewers).
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

export interface RawWebSocket {
  send(payload: Buffer): void;
  close(): void;
}

/** Calls `onPayload` with each piece of binary payload as it arrives (a view: copy to keep). */
export function openRawWebSocket(url: string, onPayload: (piece: Buffer) => void): Promise<RawWebSocket> {
  const target = new URL(url);
  let handler: (chunk: Buffer) => void = () => {};
  // One reusable read buffer: Node's default (a fresh 64 KiB buffer per read) caps a loopback
  // reader at about half of what the kernel delivers here.
  const readBuffer = Buffer.allocUnsafe(1024 * 1024);
  const socket = connect({
    port: Number(target.port),
    host: target.hostname,
    onread: {
      buffer: readBuffer,
      callback: (n) => {
        handler(readBuffer.subarray(0, n));
        return true;
      },
    },
  });
  socket.setNoDelay(true);
  const key = randomBytes(16).toString('base64');
  socket.write(
    `GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  const send = (payload: Buffer, opcode = 2): void => writeFrame(socket, payload, opcode);
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const parser = new FrameParser(onPayload, (ping) => send(ping, 0xa));
    const onHandshake = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const status = head.toString('latin1', 0, head.indexOf('\r\n'));
      if (!/^HTTP\/1\.1 101 /.test(status)) {
        reject(new Error(`upgrade refused: ${status}`));
        return;
      }
      handler = (c) => parser.push(c);
      resolve({ send: (p) => send(p), close: () => socket.destroy() });
      if (head.length > end + 4) parser.push(head.subarray(end + 4));
    };
    handler = onHandshake;
    socket.once('error', reject);
  });
}

function writeFrame(socket: Socket, payload: Buffer, opcode: number): void {
  if (payload.length > 125) throw new Error('the bench client only sends short frames');
  const frame = Buffer.allocUnsafe(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  randomBytes(4).copy(frame, 2);
  for (let i = 0; i < payload.length; i++) frame[6 + i] = payload[i]! ^ frame[2 + (i & 3)]!;
  socket.write(frame);
}

class FrameParser {
  private header = Buffer.alloc(14);
  private headerHave = 0;
  private left = 0;
  private opcode = 0;
  private control: Buffer[] = [];

  constructor(
    private readonly onPayload: (piece: Buffer) => void,
    private readonly onPing: (payload: Buffer) => void,
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.left === 0 && !this.inPayload) {
        at = this.readHeader(chunk, at);
        continue;
      }
      const take = Math.min(this.left, chunk.length - at);
      const piece = chunk.subarray(at, at + take);
      if (this.opcode >= 8) this.control.push(Buffer.from(piece));
      else this.onPayload(piece);
      this.left -= take;
      at += take;
      if (this.left === 0) this.endFrame();
    }
  }

  private inPayload = false;

  private readHeader(chunk: Buffer, at: number): number {
    while (at < chunk.length) {
      this.header[this.headerHave++] = chunk[at++]!;
      const need = this.headerLength();
      if (need < 0 || this.headerHave < need) continue;
      const h = this.header;
      this.opcode = h[0]! & 0x0f;
      const len7 = h[1]! & 0x7f;
      this.left = len7 === 126 ? h.readUInt16BE(2) : len7 === 127 ? Number(h.readBigUInt64BE(2)) : len7;
      this.headerHave = 0;
      this.inPayload = this.left > 0;
      if (!this.inPayload) this.endFrame();
      return at;
    }
    return at;
  }

  private headerLength(): number {
    if (this.headerHave < 2) return -1;
    const len7 = this.header[1]! & 0x7f;
    return len7 === 126 ? 4 : len7 === 127 ? 10 : 2;
  }

  private endFrame(): void {
    this.inPayload = false;
    if (this.opcode === 9) this.onPing(Buffer.concat(this.control));
    this.control = [];
  }
}
