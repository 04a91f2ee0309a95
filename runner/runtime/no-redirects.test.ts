/**
 * A fake engine on a Unix socket that answers with redirects and broken streams: the client must
 * turn each into an E_ENGINE error, dial nothing else, and never throw outside the call.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer, type ServerResponse } from 'node:http';
import net, { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { GrexalError } from '../errors.ts';
import { buildImage, inspectImage } from './docker-images.ts';
import { refuseEngineRedirects } from './no-redirects.ts';

let dir: string;
let engine: HttpServer;
let trap: Server;
let trapPort: number;
const trapped: Socket[] = [];
let answer: (res: ServerResponse) => void = (res) => res.end();

beforeAll(async () => {
  trap = createServer((socket) => {
    trapped.push(socket);
    socket.destroy();
  });
  await new Promise<void>((resolve) => trap.listen(0, '127.0.0.1', resolve));
  trapPort = (trap.address() as { port: number }).port;
  dir = await mkdtemp(join(tmpdir(), 'grexal-fake-engine-'));
  engine = createHttpServer((req, res) => {
    req.resume();
    answer(res);
  });
  await new Promise<void>((resolve) => engine.listen(join(dir, 'docker.sock'), resolve));
});

afterAll(async () => {
  await new Promise((resolve) => engine.close(resolve));
  await new Promise((resolve) => trap.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

function client(): Dockerode {
  refuseEngineRedirects();
  return new Dockerode({ socketPath: join(dir, 'docker.sock') });
}

const redirect = (location: string) => (res: ServerResponse) => {
  res.writeHead(301, { location, 'content-type': 'text/html' });
  res.end('<a href="x">Moved Permanently</a>.');
};

async function engineError(call: Promise<unknown>): Promise<GrexalError> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GrexalError);
  return error as GrexalError;
}

describe('the engine client', () => {
  it('turns a redirect into E_ENGINE without dialling its Location', async () => {
    for (const location of [
      `http://127.0.0.1:${trapPort}/x/json`,
      `/../127.0.0.1:${trapPort}/x/json`,
      'ftp://host.test/x',
      '::not a url::',
    ]) {
      answer = redirect(location);
      const error = await engineError(inspectImage(client(), 'grexal/agent'));
      expect(error.code).toBe('E_ENGINE');
      expect(error.message).toContain('redirect (HTTP 301)');
    }
    expect(trapped).toHaveLength(0);
  });

  it('turns a redirect of a streaming call (a build) into E_ENGINE', async () => {
    answer = redirect(`http://127.0.0.1:${trapPort}/build`);
    const context = Readable.from([Buffer.alloc(1024)]);
    const error = await engineError(buildImage(client(), { context, tag: 'grexal-test/x' }));
    expect(error.code).toBe('E_ENGINE');
    expect(trapped).toHaveLength(0);
  });

  it('survives an engine that drops a build stream half-way', async () => {
    answer = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"stream":"Step 1/2 : FROM x\\n"}\n');
      setImmediate(() => res.socket?.destroy());
    };
    const context = Readable.from([Buffer.alloc(1024)]);
    const error = await engineError(buildImage(client(), { context, tag: 'grexal-test/x' }));
    expect(['E_ENGINE', 'E_ENGINE_UNREACHABLE', 'E_IMAGE_BUILD_FAILED']).toContain(error.code);
  });

  it('refuses a name that is not a reference before asking the engine', async () => {
    let asked = 0;
    answer = (res) => {
      asked++;
      res.writeHead(404).end('{"message":"No such image"}');
    };
    const error = await engineError(inspectImage(client(), '../../127.0.0.1:1/x'));
    expect(error.code).toBe('E_VALIDATION');
    expect(asked).toBe(0);
    expect(await inspectImage(client(), 'grexal/agent')).toBeUndefined();
    expect(asked).toBe(1);
  });

  it('asks over the Unix socket without working out a TLS server name (net.isIP: its IPv6 pattern costs a CLI start ~5-15 ms)', async () => {
    answer = (res) => res.end('OK');
    const isIP = vi.spyOn(net, 'isIP');
    try {
      expect(String(await client().ping())).toBe('OK');
      expect(isIP).not.toHaveBeenCalled();
    } finally {
      isIP.mockRestore();
    }
  });
});
