/**
 * `grexal run` does not wait for the engine's ping (connectEngineAlongside): an engine that is not
 * there must still fail with the error the ping gave, with the same attempts and the same fix.
 * Real sockets, no engine: a path with nothing at it, and a file that is not a socket.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import { DockerRuntime } from './docker-runtime.ts';
import { connectEngineAlongside, type EngineCandidate, PING_TIMEOUT_MS, probeEngines } from './engine.ts';

const dir = mkdtempSync(join(tmpdir(), 'engine-alongside-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function candidates(socketPath: string): EngineCandidate[] {
  return [
    { strategy: 'DOCKER_HOST', skipped: 'not set' },
    { strategy: 'test socket', endpoint: `unix://${socketPath}`, options: { socketPath } },
  ];
}

const spec = (sandboxId: string) => ({
  sandboxId,
  image: 'grexal/agent',
  hostRunDir: dir,
  limits: {
    memoryBytes: 256 * 2 ** 20,
    nanoCpus: 1e9,
    pidsLimit: 64,
    tmpBytes: 2 ** 20,
    homeBytes: 2 ** 20,
    shmBytes: 2 ** 20,
  },
});

describe('connectEngineAlongside', () => {
  it.each([
    ['nothing at the path', 'no-such.sock', 'no such socket'],
    ['a file that is not a socket', 'not-a-socket.sock', 'connection refused (is dockerd running?)'],
  ])('%s: the ping fails with the error probeEngines gives, and so does a create', async (_, name, why) => {
    const path = join(dir, name);
    if (name.startsWith('not-a')) writeFileSync(path, '');
    const probed = (await probeEngines(candidates(path)).catch((e: unknown) => e)) as GrexalError;
    expect(probed.code).toBe('E_ENGINE_UNREACHABLE');

    const { docker, endpoint, reachable } = await connectEngineAlongside(candidates(path));
    const pinged = (await reachable.catch((e: unknown) => e)) as GrexalError;
    expect(pinged).toBeInstanceOf(GrexalError);
    expect(pinged.code).toBe('E_ENGINE_UNREACHABLE');
    expect(pinged.message).toBe(probed.message);
    expect(pinged.message).toContain(`test socket (unix://${path}): ${why}`);
    expect(pinged.message).toContain('Run `grexal doctor --fix` or start Docker.');

    const runtime = new DockerRuntime(docker, endpoint, { reachable });
    const created = (await runtime
      .createContainer(spec('sbx_alongside'))
      .catch((e: unknown) => e)) as GrexalError;
    expect(created.code).toBe('E_ENGINE_UNREACHABLE');
    expect(created.message).toBe(probed.message);
    // The reaper has nothing to do without an engine and says nothing of it: the create does.
    expect(await runtime.reapLeftovers()).toEqual([]);
  });

  it("an engine that accepts but never answers fails within the ping deadline, not the create's", async () => {
    const path = join(dir, 'hung.sock');
    const server: Server = createServer(() => {});
    await new Promise<void>((resolve) => server.listen(path, resolve));
    try {
      const { docker, endpoint, reachable } = await connectEngineAlongside(candidates(path));
      const runtime = new DockerRuntime(docker, endpoint, { reachable });
      const created = (await runtime
        .createContainer(spec('sbx_hung'))
        .catch((e: unknown) => e)) as GrexalError;
      expect(created.code).toBe('E_ENGINE_UNREACHABLE');
      expect(created.message).toContain(`no answer within ${PING_TIMEOUT_MS} ms`);
    } finally {
      server.close();
    }
  });

  it('with several engines to try, the first that answers is chosen first, as before', async () => {
    const path = join(dir, 'also-missing.sock');
    const many = [
      ...candidates(path),
      { strategy: 'other', endpoint: 'unix:///nowhere', options: { socketPath: '/nowhere' } },
    ];
    const error = (await connectEngineAlongside(many).catch((e: unknown) => e)) as GrexalError;
    expect(error.code).toBe('E_ENGINE_UNREACHABLE');
    expect(error.message).toContain('other (unix:///nowhere): no such socket');
  });
});
