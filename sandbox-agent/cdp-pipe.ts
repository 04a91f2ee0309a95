/**
 * The browser container's DevTools endpoint: Chromium runs with `--remote-debugging-pipe` (it
 * reads CDP messages on fd 3 and writes them on fd 4, each ended by a NUL byte, and opens no TCP
 * port), and this bridges that pipe byte for byte to a Unix socket in the browser container's own
 * run directory, where the runner (and only the runner: the agent's container does not mount that
 * directory) connects with runner/browser's nulFramedConnection.
 *
 * Why not Chromium's `--remote-debugging-port`: the browser container shares the agent's network
 * namespace, so a DevTools port on loopback would be the agent's to dial. A pipe is nobody's.
 *
 * One client at a time: the pipe is one browser-level connection. A second client while one is
 * connected is closed at once; once the first goes, the next one gets the pipe.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';

export interface CdpPipe {
  /** Chromium's fd 3: what it reads. */
  toBrowser: Writable;
  /** Chromium's fd 4: what it writes. */
  fromBrowser: Readable;
}

/** The id of the launcher's own probe; the runner's ids are positive. */
const PROBE_ID = -1;

/**
 * Resolves once Chromium answers a Browser.getVersion on the pipe (its DevTools is up), before
 * anyone else can talk to it: the answer is consumed here.
 */
export function probeBrowser(pipe: CdpPipe, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => finish(new Error('Chromium did not answer on its DevTools pipe')),
      timeoutMs,
    );
    const onData = (chunk: Buffer): void => {
      text += chunk.toString('utf8');
      for (let end = text.indexOf('\0'); end !== -1; end = text.indexOf('\0')) {
        const message = text.slice(0, end);
        text = text.slice(end + 1);
        try {
          const parsed = JSON.parse(message) as { id?: number; result?: { product?: string } };
          if (parsed.id === PROBE_ID) return void finish(undefined, parsed.result?.product ?? 'Chromium');
        } catch {
          // Not ours; nothing else is on the pipe yet.
        }
      }
    };
    const onEnd = (): void => finish(new Error('Chromium closed its DevTools pipe'));
    const finish = (error: Error | undefined, product?: string): void => {
      clearTimeout(timer);
      pipe.fromBrowser.off('data', onData);
      pipe.fromBrowser.off('end', onEnd);
      pipe.fromBrowser.pause();
      if (error) reject(error);
      else resolve(product!);
    };
    pipe.fromBrowser.on('data', onData);
    pipe.fromBrowser.once('end', onEnd);
    pipe.toBrowser.write(`${JSON.stringify({ id: PROBE_ID, method: 'Browser.getVersion' })}\0`);
  });
}

export interface CdpPipeServer {
  close(): Promise<void>;
}

/** Listens on `socketPath` (0600) and bridges one client at a time to the pipe. */
export async function serveCdpPipe(socketPath: string, pipe: CdpPipe): Promise<CdpPipeServer> {
  let current: Socket | undefined;
  // What Chromium writes while nobody is connected is dropped: answers to a client that went.
  pipe.fromBrowser.on('data', (chunk: Buffer) => {
    if (current && !current.write(chunk)) pipe.fromBrowser.pause();
  });
  pipe.fromBrowser.resume();
  const server: Server = createServer((socket) => {
    socket.on('error', () => {});
    if (current) return void socket.destroy();
    current = socket;
    socket.on('drain', () => pipe.fromBrowser.resume());
    socket.on('data', (chunk: Buffer) => {
      if (!pipe.toBrowser.write(chunk)) {
        socket.pause();
        pipe.toBrowser.once('drain', () => socket.resume());
      }
    });
    socket.once('close', () => {
      if (current === socket) current = undefined;
      pipe.fromBrowser.resume();
    });
  });
  rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  chmodSync(socketPath, 0o600);
  return {
    close: () =>
      new Promise((resolve) => {
        current?.destroy();
        server.close(() => resolve());
      }),
  };
}
