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
  socket: Socket;
  /** The server's 12-byte ProtocolVersion and anything that came with it, for the viewer. */
  greeting: Buffer;
}

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
  const socket = createConnection({ path });
  // Errors after the greeting are the bridge's business (it watches 'close'); until it attaches,
  // an 'error' with no listener would crash the runner.
  socket.on('error', () => {});
  try {
    const greeting = await readGreeting(socket, signal);
    const after = await statSocket(path);
    if (after.ino !== before.ino || after.dev !== before.dev) {
      throw unavailable('was replaced while connecting');
    }
    return { socket, greeting };
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

/** Resolves once 12 bytes of a valid RFB greeting arrived; leaves the socket paused. */
function readGreeting(socket: Socket, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      signal.removeEventListener('abort', onAbort);
    };
    const fail = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      if (size < 12) return;
      socket.pause();
      cleanup();
      const greeting = chunks.length === 1 ? chunk : Buffer.concat(chunks, size);
      const version = greeting.toString('latin1', 0, 12);
      if (!SERVER_VERSION.test(version) || version === 'RFB 000.000\n') {
        reject(unavailable('did not greet as a VNC server; refused'));
      } else {
        resolve(greeting);
      }
    };
    const onError = (error: Error): void => fail(unavailable(`refused the connection (${error.message})`));
    const onClose = (): void => fail(unavailable('closed before greeting'));
    const onAbort = (): void =>
      fail(
        signal.reason instanceof Error && signal.reason.name === 'TimeoutError'
          ? unavailable('did not greet in time')
          : new GrexalError('E_ABORTED', 'Connecting to the desktop was cancelled.'),
      );
    socket.on('data', onData);
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
