/**
 * The wait call against a stand-in engine on a Unix socket: an answer, and a socket that closes
 * mid-answer as a killed dockerd's does (dockerode's own wait never settles then).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { isConnectionError, pauseWithRetries, waitForExit, withDeadline } from './docker-calls.ts';

let dir: string;
let server: Server;

async function engine(onWait: (res: import('node:http').ServerResponse) => void): Promise<Dockerode> {
  dir = await mkdtemp(join(tmpdir(), 'grexal-wait-'));
  const socketPath = join(dir, 'engine.sock');
  server = createServer((req, res) => {
    if (req.method === 'POST' && req.url?.startsWith('/containers/c1/wait?condition=not-running')) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.flushHeaders();
      onWait(res);
    } else res.writeHead(404).end('{"message":"no such route"}');
  });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  return new Dockerode({ socketPath });
}

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('waitForExit', () => {
  it('resolves with the exit code the engine sends at the exit', async () => {
    const docker = await engine((res) => setTimeout(() => res.end('{"Error":null,"StatusCode":137}\n'), 20));
    await expect(waitForExit(docker.modem, 'c1', new AbortController().signal)).resolves.toBe(137);
  });

  it('rejects with a connection error when the socket closes before the exit', async () => {
    const docker = await engine((res) => setTimeout(() => res.socket?.destroy(), 20));
    const error = await waitForExit(docker.modem, 'c1', new AbortController().signal).catch(
      (e: unknown) => e,
    );
    expect(isConnectionError(error)).toBe(true);
  });

  it('rejects when its signal aborts (the engine watch declared the engine lost)', async () => {
    const docker = await engine(() => {});
    const controller = new AbortController();
    const waiting = waitForExit(docker.modem, 'c1', controller.signal);
    setTimeout(() => controller.abort(new Error('lost')), 20);
    await expect(waiting).rejects.toBeDefined();
  });
});

describe('withDeadline', () => {
  it('turns an engine that does not answer into E_TIMEOUT naming the endpoint and the call', async () => {
    const hang = (signal: AbortSignal) =>
      new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
    await expect(withDeadline('inspect', 'unix:///x.sock', hang, { timeoutMs: 20 })).rejects.toMatchObject({
      code: 'E_TIMEOUT',
      message: expect.stringContaining('unix:///x.sock did not answer inspect'),
    });
  });
});

describe('pauseWithRetries', () => {
  const failing = (messages: string[]) => {
    let calls = 0;
    const pause = async () => {
      const message = messages[calls++];
      if (message) throw new Error(message);
    };
    return { pause, calls: () => calls };
  };

  it('tries again while the runtime could not freeze in time, then succeeds', async () => {
    const p = failing([
      '(HTTP code 500) server error - Cannot pause container x: OCI runtime pause failed: unable to freeze: unknown',
      'unable to freeze',
    ]);
    await pauseWithRetries(p.pause, [0, 0, 0]);
    expect(p.calls()).toBe(3);
  });

  it('gives up after its last wait, with the runtime error', async () => {
    const p = failing(['unable to freeze', 'unable to freeze', 'unable to freeze']);
    await expect(pauseWithRetries(p.pause, [0, 0])).rejects.toThrow('unable to freeze');
    expect(p.calls()).toBe(3);
  });

  it('does not retry any other error', async () => {
    const p = failing(['(HTTP code 404) no such container']);
    await expect(pauseWithRetries(p.pause, [0, 0])).rejects.toThrow('no such container');
    expect(p.calls()).toBe(1);
  });
});
