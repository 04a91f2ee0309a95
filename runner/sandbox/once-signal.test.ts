/**
 * What the start's ordering relies on (sandbox.ts): a request begun on a new connection is on the
 * wire before the signal lets a spawn (and its fork, which holds the event loop) go. A real Unix
 * socket: the bytes written before the connect completes leave when it does.
 */
import { mkdtempSync, readFile, rmSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { OnceSignal } from './once-signal.ts';

const dir = mkdtempSync(join(tmpdir(), 'once-signal-'));
const servers: Server[] = [];
afterAll(() => {
  for (const server of servers) server.close();
  rmSync(dir, { recursive: true, force: true });
});

function listening(path: string): Promise<void> {
  const server = createServer((socket) => socket.resume());
  servers.push(server);
  return new Promise((resolve) => server.listen(path, resolve));
}

describe('OnceSignal', () => {
  it('fires once a request begun on a new connection has been written, never before', async () => {
    const path = join(dir, 'engine.sock');
    await listening(path);
    // From an I/O callback, as the sandbox's start is: the turn's own check phase comes before the
    // connect's completion.
    const atFire = await new Promise<{ connecting: boolean; unsent: number; written: number }>(
      (resolve, reject) => {
        readFile(fileURLToPath(import.meta.url), (error) => {
          if (error) return reject(error);
          const socket = connect(path);
          socket.write('POST /containers/create HTTP/1.1\r\n\r\n');
          const signal = new OnceSignal();
          signal.fireSoon();
          void signal.fired.then((go) => {
            expect(go).toBe(true);
            resolve({
              connecting: socket.connecting,
              unsent: socket.writableLength,
              written: socket.bytesWritten,
            });
            socket.destroy();
          });
        });
      },
    );
    expect(atFire).toEqual({ connecting: false, unsent: 0, written: 36 });
  });

  it('says false when called off first, and only once', async () => {
    const signal = new OnceSignal();
    signal.cancel();
    signal.fireSoon();
    expect(await signal.fired).toBe(false);
  });
});
