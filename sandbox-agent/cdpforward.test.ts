/**
 * The supervisor's CDP forwarder (supervisor/cdpforward.py): GREXAL_CDP_URL's loopback port,
 * forwarded byte for byte to the relay's Unix socket. Run as in the image, against a fake runner
 * and a fake relay (an echo server on the socket).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeCtxServer } from './clients/fake-ctx-server.ts';
import { startPython } from './testing/python.ts';

const SUPERVISOR = new URL('./supervisor/supervisor.py', import.meta.url).pathname;
let server: FakeCtxServer;
let dir: string;
let relay: Server | undefined;
let relayConnections: number;

beforeAll(async () => {
  server = await FakeCtxServer.start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-cdp-'));
  relayConnections = 0;
});
afterEach(async () => {
  relay?.close();
  relay = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in relay: echoes what it gets, and hangs up its side when the client does. */
async function startEchoRelay(): Promise<void> {
  relay = createServer((socket) => {
    relayConnections++;
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => relay?.listen(join(dir, 'cdp.sock'), resolve));
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** The supervisor with `cdpRelay` (or not); its agent prints GREXAL_CDP_URL and waits for stdin's end. */
function supervise(
  cdpRelay: { port: number } | undefined,
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell expands it, not JS.
  command = ['sh', '-c', 'echo "url=${GREXAL_CDP_URL:-none}"; sleep 20'],
) {
  server.handler = (request) =>
    request.method === 'bootstrap'
      ? {
          result: {
            command,
            env: {},
            stopTimeoutMs: 300,
            ...(cdpRelay ? { cdpRelay } : {}),
          },
        }
      : { result: {} };
  const run = startPython(['-I', '-S', SUPERVISOR], {
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      GREXAL_CTX_SOCKET: server.path,
      GREXAL_CDP_SOCKET: join(dir, 'cdp.sock'),
    },
  });
  const url = new Promise<string>((resolve) => {
    let out = '';
    run.child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /url=(\S+)\n/.exec(out);
      if (match?.[1]) resolve(match[1]);
    });
  });
  return { ...run, url };
}

/** Sends `data` over a fresh TCP connection, half-closes, and collects everything until the end. */
function roundTrip(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => resolve(Buffer.concat(chunks)));
    socket.on('error', reject);
    socket.end(data);
  });
}

describe('the CDP forwarder', { timeout: 30_000 }, () => {
  it('forwards GREXAL_CDP_URL byte for byte to the relay, for many connections at once', async () => {
    await startEchoRelay();
    const port = await freePort();
    const run = supervise({ port });
    expect(await run.url).toBe(`http://127.0.0.1:${port}`);
    const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const large = randomBytes(3 * 1024 * 1024);
    const results = await Promise.all([
      roundTrip(port, every),
      roundTrip(port, large),
      roundTrip(port, Buffer.from('{"id":1}\0')),
    ]);
    expect(results[0]?.equals(every)).toBe(true);
    expect(results[1]?.equals(large)).toBe(true);
    expect(results[2]?.toString()).toBe('{"id":1}\0');
    expect(relayConnections).toBe(3);
    run.child.kill('SIGTERM');
    await run.exit;
    // Gone with the supervisor: nothing listens on the port any more.
    await expect(roundTrip(port, Buffer.from('x'))).rejects.toThrow(/ECONNREFUSED/);
  });

  it("serves the agent's connection made at its very start, before the forwarder runs", async () => {
    await startEchoRelay();
    const port = await freePort();
    // The agent's first instruction: connect, send, read the echo. Nothing waits for the forwarder.
    const agent = [
      'import os, socket',
      "host, port = os.environ['GREXAL_CDP_URL'].removeprefix('http://').split(':')",
      's = socket.create_connection((host, int(port)), timeout=5)',
      "s.sendall(b'first')",
      "print('url=echo:' + s.recv(16).decode(), flush=True)",
      'import time; time.sleep(20)',
    ].join('\n');
    const run = supervise({ port }, ['python3', '-I', '-S', '-c', agent]);
    expect(await run.url).toBe('echo:first');
    expect(relayConnections).toBe(1);
    run.child.kill('SIGTERM');
    await run.exit;
  });

  it('closes a connection it cannot relay, and keeps serving', async () => {
    const port = await freePort();
    const run = supervise({ port });
    await run.url;
    // No relay yet: accepted, then closed (reset, as its request was never read), nothing sent back.
    const answer = await roundTrip(port, Buffer.from('GET /json/version HTTP/1.1\r\n\r\n')).catch(
      (error: NodeJS.ErrnoException) => error.code,
    );
    expect([0, 'ECONNRESET']).toContain(typeof answer === 'string' ? answer : answer?.length);
    await startEchoRelay();
    expect((await roundTrip(port, Buffer.from('again'))).toString()).toBe('again');
    run.child.kill('SIGTERM');
    await run.exit;
  });

  it('listens on nothing and sets no GREXAL_CDP_URL without cdpRelay', async () => {
    const run = supervise(undefined);
    expect(await run.url).toBe('none');
    run.child.kill('SIGTERM');
    await run.exit;
  });

  it('does not start the agent when the port is taken, and says why', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as { port: number };
    try {
      const run = supervise({ port });
      const exit = await run.exit;
      expect(exit.code).toBe(125);
      expect(exit.stdout).not.toContain('url=');
      expect(exit.stderr).toMatch(/CDP forwarder did not start: cannot listen on 127\.0\.0\.1:\d+/);
    } finally {
      taken.close();
    }
  });
});
