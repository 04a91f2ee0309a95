/**
 * A small RFB 3.8 server on a Unix socket, for the bridge's tests and bench/bridge: security type
 * None, a raw 32 bpp framebuffer held in memory, every FramebufferUpdateRequest answered at once
 * (a full-screen request with one prebuilt buffer, so the server is never the bottleneck). It
 * records what each client sent, so a test can tell which input reached "the desktop".
 */
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';

export interface RecordedMessage {
  type: number;
  bytes: Buffer;
}

export interface RfbClientConnection extends EventEmitter<{ message: [RecordedMessage] }> {
  readonly messages: RecordedMessage[];
  readonly socket: Socket;
  /** The client's ClientInit shared flag, once it sent one. */
  shared?: boolean;
}

export interface FakeRfbServer {
  readonly path: string;
  readonly width: number;
  readonly height: number;
  readonly connections: RfbClientConnection[];
  /** Bytes of one full-screen FramebufferUpdate (header included). */
  readonly fullFrameBytes: number;
  close(): Promise<void>;
}

const SERVER_INIT_NAME = Buffer.from('grexal-fake');

export async function startFakeRfbServer(
  path: string,
  options: { width?: number; height?: number } = {},
): Promise<FakeRfbServer> {
  const width = options.width ?? 1280;
  const height = options.height ?? 800;
  const fullFrame = frameUpdate(0, 0, width, height, true);
  const connections: RfbClientConnection[] = [];
  const server: Server = createServer((socket) => {
    const connection: RfbClientConnection = Object.assign(
      new EventEmitter<{ message: [RecordedMessage] }>(),
      {
        messages: [] as RecordedMessage[],
        socket,
      },
    );
    connections.push(connection);
    serve(socket, connection, width, height, fullFrame);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  return {
    path,
    width,
    height,
    connections,
    fullFrameBytes: fullFrame.length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.socket.destroy();
        server.close(() => resolve());
      }),
  };
}

function serve(
  socket: Socket,
  connection: RfbClientConnection,
  width: number,
  height: number,
  full: Buffer,
): void {
  let phase: 'version' | 'security' | 'init' | 'messages' = 'version';
  let pending: Buffer = Buffer.alloc(0);
  socket.on('error', () => {});
  socket.setNoDelay?.(true);
  socket.write('RFB 003.008\n');
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      const need = phase === 'version' ? 12 : phase === 'messages' ? messageLength(pending) : 1;
      if (need < 0 || pending.length < need) return;
      const bytes = pending.subarray(0, need);
      pending = pending.subarray(need);
      if (phase === 'version') {
        phase = 'security';
        socket.write(Buffer.from([1, 1]));
      } else if (phase === 'security') {
        phase = 'init';
        socket.write(Buffer.alloc(4));
      } else if (phase === 'init') {
        phase = 'messages';
        connection.shared = bytes[0] === 1;
        socket.write(serverInit(width, height));
      } else {
        const message = { type: bytes[0]!, bytes: Buffer.from(bytes) };
        connection.messages.push(message);
        connection.emit('message', message);
        if (message.type === 3) socket.write(answer(bytes, width, height, full));
      }
    }
  });
}

function answer(request: Buffer, width: number, height: number, full: Buffer): Buffer {
  const x = request.readUInt16BE(2);
  const y = request.readUInt16BE(4);
  const w = Math.min(request.readUInt16BE(6), width - x);
  const h = Math.min(request.readUInt16BE(8), height - y);
  if (x === 0 && y === 0 && w === width && h === height) return full;
  return frameUpdate(x, y, Math.max(w, 0), Math.max(h, 0), false);
}

function frameUpdate(x: number, y: number, w: number, h: number, pattern: boolean): Buffer {
  const message = Buffer.alloc(16 + w * h * 4);
  message.writeUInt16BE(1, 2);
  message.writeUInt16BE(x, 4);
  message.writeUInt16BE(y, 6);
  message.writeUInt16BE(w, 8);
  message.writeUInt16BE(h, 10);
  message.writeInt32BE(0, 12);
  if (pattern) for (let i = 16; i < message.length; i += 4) message.writeUInt32LE((i * 2654435761) >>> 0, i);
  return message;
}

function serverInit(width: number, height: number): Buffer {
  const head = Buffer.alloc(24);
  head.writeUInt16BE(width, 0);
  head.writeUInt16BE(height, 2);
  // bpp 32, depth 24, little-endian, true colour, max 255 each, shifts 16/8/0.
  Buffer.from([32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]).copy(head, 4);
  head.writeUInt32BE(SERVER_INIT_NAME.length, 20);
  return Buffer.concat([head, SERVER_INIT_NAME]);
}

/** Length of the client message at the start of `b`, or -1 until enough of it arrived. */
function messageLength(b: Buffer): number {
  if (b.length < 1) return -1;
  const fixed: Record<number, number> = { 0: 20, 3: 10, 4: 8, 5: 6, 150: 10, 250: 4, 255: 12 };
  const type = b[0]!;
  if (fixed[type] !== undefined) return fixed[type];
  if (type === 2) return b.length < 4 ? -1 : 4 + 4 * b.readUInt16BE(2);
  if (type === 6) return b.length < 8 ? -1 : 8 + Math.abs(b.readInt32BE(4));
  if (type === 248) return b.length < 9 ? -1 : 9 + b[8]!;
  if (type === 251) return b.length < 8 ? -1 : 8 + 16 * b[6]!;
  throw new Error(`fake RFB server: unknown client message ${type}`);
}
