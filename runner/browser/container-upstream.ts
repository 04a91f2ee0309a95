/**
 * The desktop sandbox's browser, as a CdpUpstream: the browser container bridges Chromium's
 * `--remote-debugging-pipe` to `cdp.sock` in its own run directory (sandbox-agent/cdp-pipe.ts),
 * which the agent's container does not mount, and this connects there with the pipe's own framing.
 *
 * The directory is the browser container's, not the agent's, so the agent cannot plant a link in
 * it. Chromium renders pages the agent chose, though, and runs in that container: the path is still
 * checked to be a socket and not a link, and the same inode once connected.
 */
import { lstat } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import {
  type CdpConnection,
  type CdpUpstream,
  type NulFramingOptions,
  nulFramedConnection,
} from './cdp-connection.ts';

export interface ContainerUpstreamOptions extends NulFramingOptions {
  /** Default for `open()`'s timeout. 5000. */
  timeoutMs?: number;
}

export class BrowserContainerUpstream implements CdpUpstream {
  constructor(
    /** `<browser host dir>/cdp.sock`, absolute. */
    private readonly socketPath: string,
    private readonly options: ContainerUpstreamOptions = {},
  ) {}

  async open(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<CdpConnection> {
    const signal = AbortSignal.any([
      AbortSignal.timeout(options.timeoutMs ?? this.options.timeoutMs ?? 5000),
      ...(options.signal ? [options.signal] : []),
    ]);
    const before = await socketIdentity(this.socketPath);
    const socket = await connect(this.socketPath, signal);
    try {
      const after = await socketIdentity(this.socketPath);
      if (after.ino !== before.ino || after.dev !== before.dev)
        throw new Error("the browser's cdp.sock was replaced while connecting; refused");
    } catch (error) {
      socket.destroy();
      throw error;
    }
    return nulFramedConnection({ readable: socket, writable: socket }, this.options);
  }
}

async function socketIdentity(path: string): Promise<{ ino: number; dev: number }> {
  const stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
    throw new Error(
      `the browser's cdp.sock cannot be read (${error.code}); is the browser container running?`,
    );
  });
  if (!stats.isSocket()) throw new Error("the browser's cdp.sock is not a socket; refused");
  return { ino: stats.ino, dev: stats.dev };
}

function connect(path: string, signal: AbortSignal): Promise<Socket> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new Error("connecting to the browser's cdp.sock was stopped"));
    const socket = createConnection({ path });
    const onAbort = (): void => {
      socket.destroy();
      reject(new Error("connecting to the browser's cdp.sock timed out or was stopped"));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(new Error(`the browser's cdp.sock refused the connection (${error.message})`));
    });
    socket.once('connect', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(socket);
    });
  });
}
