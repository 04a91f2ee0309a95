/**
 * The client's side of the RFB handshake for a takeover's spare VNC connection (prepared-vnc.ts):
 * connect, security None, ClientInit shared, keeping the greeting and ServerInit for the bridge
 * to answer the viewer with; and, later, the first requests asked ahead on such a connection.
 */
import { GrexalError } from '../errors.ts';
import { firstRequests } from './first-requests.ts';
import { connectVnc, type PreparedHandshake, type VncConnection, type VncReader } from './vnc-socket.ts';

export interface PrepareVncOptions {
  /** Covers the connect and the handshake. Default 5000. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A server sending more than this to a connection nobody watches yet is dropped as misbehaving. */
const MAX_HELD_BYTES = 4 * 1024 * 1024;
/** The same with the first frame asked for ahead: a 3840×2160 frame in Raw, the worst case, and room. */
const MAX_HELD_AHEAD_BYTES = 40 * 1024 * 1024;
const MAX_NAME_BYTES = 64 * 1024;
const SECURITY_NONE = 1;

/** Connects to `path` and does the client's side of the handshake: security None, shared. */
export async function prepareVnc(
  path: string,
  options: PrepareVncOptions = {},
): Promise<VncConnection & { prepared: PreparedHandshake }> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const signal = AbortSignal.any([
    AbortSignal.timeout(timeoutMs),
    ...(options.signal ? [options.signal] : []),
  ]);
  const vnc = await connectVnc(path, { timeoutMs, signal });
  const bytes = new HandshakeBytes(vnc, vnc.greeting.subarray(12), signal);
  try {
    const minor = clientMinor(vnc.greeting.toString('latin1', 0, 12));
    vnc.socket.write(`RFB 003.00${minor}\n`);
    if (minor === 3) {
      if ((await bytes.read(4)).readUInt32BE(0) !== SECURITY_NONE) throw refused('no security type None');
    } else {
      const count = (await bytes.read(1))[0]!;
      const types = await bytes.read(count === 0 ? 4 : count);
      if (count === 0 || !types.includes(SECURITY_NONE)) throw refused('no security type None');
      vnc.socket.write(Buffer.from([SECURITY_NONE]));
      if (minor === 8 && (await bytes.read(4)).readUInt32BE(0) !== 0) throw refused('security failed');
    }
    vnc.socket.write(Buffer.from([1]));
    const head = await bytes.read(24);
    const nameLength = head.readUInt32BE(20);
    if (nameLength > MAX_NAME_BYTES) throw refused('desktop name too long');
    const serverInit = Buffer.concat([head, await bytes.read(nameLength)]);
    const prepared: PreparedHandshake = { serverInit, held: bytes.rest() };
    vnc.onData(holder(vnc, prepared, true));
    return Object.assign(vnc, { prepared });
  } catch (error) {
    vnc.socket.destroy();
    throw error;
  } finally {
    bytes.stop();
  }
}

/** Server bytes of a spare nobody bridges yet: kept, in order; `keepReading` false pauses the socket. */
export function holder(vnc: VncConnection, prepared: PreparedHandshake, keepReading: boolean): VncReader {
  let size = prepared.held.reduce((n, b) => n + b.length, 0);
  return (chunk, release) => {
    prepared.held.push(release ? Buffer.from(chunk) : chunk);
    release?.();
    size += chunk.length;
    if (size > (prepared.ahead ? MAX_HELD_AHEAD_BYTES : MAX_HELD_BYTES)) vnc.socket.destroy();
    return keepReading;
  };
}

/** The version the runner answers with: the highest of 3.3, 3.7, 3.8 the server offers. */
function clientMinor(greeting: string): 3 | 7 | 8 {
  const [, major, minor] = /^RFB (\d{3})\.(\d{3})\n$/.exec(greeting)!.map(Number) as [
    unknown,
    number,
    number,
  ];
  if (major > 3 || minor >= 8) return 8;
  return minor === 7 ? 7 : 3;
}

function refused(what: string): GrexalError {
  return new GrexalError(
    'E_DESKTOP_UNAVAILABLE',
    `The sandbox's VNC server refused the runner's handshake (${what}).`,
  );
}

/** Reads the handshake's fixed-size pieces off a connection's reader. */
class HandshakeBytes {
  private chunks: Buffer[] = [];
  private size = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failure: Error | undefined;
  private readonly onClose = (): void => this.fail(refused('closed during the handshake'));
  private readonly onAbort = (): void => this.fail(refused('no answer in time'));

  constructor(
    private readonly vnc: VncConnection,
    first: Buffer,
    private readonly signal: AbortSignal,
  ) {
    if (first.length) this.push(Buffer.from(first));
    vnc.onData((chunk, release) => {
      this.push(release ? Buffer.from(chunk) : chunk);
      release?.();
      return true;
    });
    vnc.socket.on('close', this.onClose);
    signal.addEventListener('abort', this.onAbort, { once: true });
    vnc.socket.resume();
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.waiter = { n, resolve, reject };
      this.wake();
    });
  }

  /** What arrived past the last read. */
  rest(): Buffer[] {
    const rest = this.chunks;
    this.chunks = [];
    this.size = 0;
    return rest;
  }

  stop(): void {
    this.vnc.socket.off('close', this.onClose);
    this.signal.removeEventListener('abort', this.onAbort);
  }

  private push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
    this.wake();
  }

  private fail(error: Error): void {
    this.failure = error;
    this.waiter?.reject(error);
    this.waiter = undefined;
  }

  private wake(): void {
    const w = this.waiter;
    if (!w || this.size < w.n) return;
    this.waiter = undefined;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.size);
    this.chunks = all.length > w.n ? [all.subarray(w.n)] : [];
    this.size -= w.n;
    w.resolve(all.subarray(0, w.n));
  }
}

/** Sends the page's first requests on a prepared connection (once): the server encodes the first frame for it now. */
export function askAhead(vnc: VncConnection): void {
  const prepared = vnc.prepared;
  if (!prepared || prepared.ahead) return;
  prepared.ahead = firstRequests(prepared.serverInit);
  vnc.socket.write(prepared.ahead);
}
