/**
 * One DevTools (CDP) connection, message by message: the seam between the relay that agents talk
 * to and whatever holds the browser. Chromium's `--remote-debugging-pipe` carries the same JSON
 * messages as its WebSocket endpoint, each ended by a NUL byte; the browser container exposes that
 * pipe on a Unix socket, and a local Chromium in `grexal dev` hands it over as two file
 * descriptors. Both become a CdpConnection through `nulFramedConnection`, so the relay never knows
 * which browser it fronts (Playwright's ConnectionTransport makes the same cut).
 */
import type { Readable, Writable } from 'node:stream';

export interface CdpConnection {
  /** One CDP message (a JSON text) to the browser. Dropped once the connection has closed. */
  send(message: string): void;
  /** Every message from the browser, in order. */
  onMessage(listener: (message: string) => void): void;
  /** Once: the browser side ended (exited, socket closed, a message over the limit) or close() ran. */
  onClose(listener: (why: Error | undefined) => void): void;
  close(): void;
  readonly closed: boolean;
}

/** Where a relay finds its browser: the desktop's browser container, or a local Chromium in dev. */
export interface CdpUpstream {
  /**
   * The browser-level connection (what /devtools/browser/<id> is over a WebSocket). A pipe gives
   * exactly one, so a relay multiplexes its clients over it.
   */
  open(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<CdpConnection>;
}

/** Default for `maxMessageBytes`: Chromium's own screenshots and DOM snapshots stay below it. */
export const DEFAULT_MAX_CDP_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface NulFramingOptions {
  /** A message from the browser larger than this closes the connection. Default 64 MiB. */
  maxMessageBytes?: number;
}

/**
 * A CdpConnection over NUL-terminated JSON: a Unix socket (`{ readable: socket, writable: socket }`)
 * or a child's pipe pair (`{ readable: child.stdio[4], writable: child.stdio[3] }`).
 */
export function nulFramedConnection(
  { readable, writable }: { readable: Readable; writable: Writable },
  options: NulFramingOptions = {},
): CdpConnection {
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_CDP_MESSAGE_BYTES;
  const messageListeners: Array<(message: string) => void> = [];
  const closeListeners: Array<(why: Error | undefined) => void> = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let closed = false;

  const finish = (why: Error | undefined): void => {
    if (closed) return;
    closed = true;
    pending = [];
    readable.destroy();
    if ((writable as unknown) !== readable) writable.destroy();
    for (const listener of closeListeners) listener(why);
  };

  readable.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let end = chunk.indexOf(0); end !== -1 && !closed; end = chunk.indexOf(0, start)) {
      pending.push(chunk.subarray(start, end));
      const message = Buffer.concat(pending).toString('utf8');
      pending = [];
      pendingBytes = 0;
      start = end + 1;
      for (const listener of messageListeners) listener(message);
    }
    if (closed || start === chunk.length) return;
    pending.push(chunk.subarray(start));
    pendingBytes += chunk.length - start;
    if (pendingBytes > maxBytes)
      finish(new Error(`a CDP message from the browser exceeded ${maxBytes} bytes`));
  });
  readable.on('error', (error) => finish(error));
  readable.on('end', () => finish(undefined));
  readable.on('close', () => finish(undefined));
  writable.on('error', (error) => finish(error));

  return {
    send(message) {
      if (closed) return;
      writable.write(`${message}\0`);
    },
    onMessage(listener) {
      messageListeners.push(listener);
    },
    onClose(listener) {
      if (closed) listener(undefined);
      else closeListeners.push(listener);
    },
    close() {
      finish(undefined);
    },
    get closed() {
      return closed;
    },
  };
}
