/**
 * Connects to a sandbox's VNC socket on the host. The runner runs as root and the socket's
 * directory belongs to the agent, so the agent could plant a symlink (or a FIFO, or a file) at
 * `vnc.sock` to point the runner at a host socket. Three guards: the path must be a socket, not a
 * link, before connecting (lstat); it must still be the same inode after connecting, which closes
 * most of the window between the two; and the peer must greet with an RFB ProtocolVersion before a
 * single viewer byte is sent to it (Docker's API, D-Bus and the like speak second, or differently).
 */
import { lstat } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { GrexalError } from '../errors.ts';

export interface VncConnection {
  /** Paused after the greeting; reads go to the reader set with `onData`, not to 'data' events. */
  socket: Socket;
  /** The server's 12-byte ProtocolVersion and anything that came with it, for the viewer. */
  greeting: Buffer;
  /** Sets who gets what the server sends. */
  onData(reader: VncReader): void;
  /**
   * Set on a connection the runner opened before any viewer (prepared-vnc.ts): the handshake with
   * the server is done, and the bridge answers the viewer's handshake itself from this.
   */
  prepared?: PreparedHandshake;
}

export interface PreparedHandshake {
  /** The server's ServerInit (screen size, pixel format, name), sent to the viewer after its ClientInit. */
  serverInit: Buffer;
  /** What the server sent after ServerInit before a viewer took the connection (a bell, a clipboard), in order. */
  held: Buffer[];
  /**
   * The requests the runner sent the server for the next viewer (first-requests.ts) once the
   * screen could be shown: `held` then has (or is receiving) the first frame, and that viewer must
   * send exactly these (rfb.ts `expectFirst`). Unset on a connection that sent nothing past ClientInit.
   */
  ahead?: Buffer;
}

/**
 * What gets the VNC server's bytes. `release`, when given, hands the chunk's memory back for
 * reuse: call it once the chunk is written out (a WebSocket send callback) and not before.
 * Return false to pause the socket (`socket.resume()` to go on).
 */
export type VncReader = (chunk: Buffer, release: (() => void) | undefined) => boolean;

/**
 * Buffers for reading the VNC socket. Node reads a socket 64 KiB at a time into a fresh buffer:
 * a framebuffer update is megabytes, so that is dozens of WebSocket messages per frame, and the
 * garbage collector ends up costing more than the copying. Here one read takes everything the
 * kernel holds for the socket (about 200 KiB by default) into a pooled buffer; a large read is
 * handed on as it is and its buffer comes back to the pool once written; a small one is copied
 * out and the buffer read into again.
 */
class ReadBuffers {
  private readonly free: Buffer[] = [];
  private current: Buffer = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);

  next(): Buffer {
    return this.current;
  }

  deliver(n: number, buf: Buffer, reader: VncReader): boolean {
    if (n < COPY_BELOW_BYTES) return reader(Buffer.from(buf.subarray(0, n)), undefined);
    this.current = this.free.pop() ?? Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
    return reader(buf.subarray(0, n), () => {
      if (this.free.length < MAX_FREE_BUFFERS) this.free.push(buf);
    });
  }
}

const READ_BUFFER_BYTES = 256 * 1024;
const COPY_BELOW_BYTES = 32 * 1024;
/** Enough for the bridge's default 8 MiB of send buffer; more are let go. */
const MAX_FREE_BUFFERS = 40;

export interface ConnectVncOptions {
  signal?: AbortSignal;
  /** Default 5000. */
  timeoutMs?: number;
}

const SERVER_VERSION = /^RFB \d{3}\.\d{3}\n$/;

export async function connectVnc(path: string, options: ConnectVncOptions = {}): Promise<VncConnection> {
  const before = await statSocket(path);
  const signal = AbortSignal.any([
    AbortSignal.timeout(options.timeoutMs ?? 5000),
    ...(options.signal ? [options.signal] : []),
  ]);
  if (signal.aborted) throw new GrexalError('E_ABORTED', 'Connecting to the desktop was cancelled.');
  let reader: VncReader = () => true;
  const reads = new ReadBuffers();
  const socket = createConnection({
    path,
    onread: { buffer: () => reads.next(), callback: (n, buf) => reads.deliver(n, buf as Buffer, reader) },
  });
  const onData = (next: VncReader): void => {
    reader = next;
  };
  // Errors after the greeting are the bridge's business (it watches 'close'); until it attaches,
  // an 'error' with no listener would crash the runner.
  socket.on('error', () => {});
  try {
    const greeting = await readGreeting(socket, onData, signal);
    const after = await statSocket(path);
    if (after.ino !== before.ino || after.dev !== before.dev) {
      throw unavailable('was replaced while connecting');
    }
    return { socket, greeting, onData };
  } catch (error) {
    socket.destroy();
    throw error;
  }
}

async function statSocket(path: string): Promise<{ ino: number; dev: number }> {
  let stats: Awaited<ReturnType<typeof lstat>>;
  try {
    stats = await lstat(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw unavailable(
      code === 'ENOENT' ? 'does not exist (is the desktop running?)' : `cannot be read (${code})`,
    );
  }
  if (!stats.isSocket()) throw unavailable('is not a socket; refused');
  return { ino: stats.ino, dev: stats.dev };
}

/** Resolves once 12 bytes of a valid RFB greeting arrived; leaves the socket paused (the reader returns false). */
function readGreeting(
  socket: Socket,
  onData: (reader: VncReader) => void,
  signal: AbortSignal,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      onData(() => false);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onChunk = (chunk: Buffer): boolean => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < 12) return true;
      cleanup();
      const greeting = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
      const version = greeting.toString('latin1', 0, 12);
      if (!SERVER_VERSION.test(version) || version === 'RFB 000.000\n') {
        reject(unavailable('did not greet as a VNC server; refused'));
      } else {
        resolve(greeting);
      }
      return false;
    };
    const onError = (error: Error): void => fail(unavailable(`refused the connection (${error.message})`));
    const onClose = (): void => fail(unavailable('closed before greeting'));
    const onAbort = (): void =>
      fail(
        signal.reason instanceof Error && signal.reason.name === 'TimeoutError'
          ? unavailable('did not greet in time')
          : new GrexalError('E_ABORTED', 'Connecting to the desktop was cancelled.'),
      );
    onData(onChunk);
    socket.on('error', onError);
    socket.on('close', onClose);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The message reaches the browser, so it never names the path. */
function unavailable(what: string): GrexalError {
  return new GrexalError(
    'E_DESKTOP_UNAVAILABLE',
    `The sandbox's VNC socket ${what}. The desktop may still be starting or have crashed; retry, or check the sandbox's log.`,
  );
}
