import Dockerode from 'dockerode';
import { afterEach, describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import { DEFAULT_SOCKET, engineCandidates, probeEngines, unreachableError } from './engine.ts';

const none = (): boolean => false;
const all = (): boolean => true;

const savedDockerHost = process.env.DOCKER_HOST;
afterEach(() => {
  if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedDockerHost;
});

describe('engineCandidates', () => {
  it('uses DOCKER_HOST alone when it is set, never falling back to another engine', () => {
    const list = engineCandidates({ DOCKER_HOST: 'unix:///run/custom.sock' }, all);
    expect(list.map((c) => [c.strategy, c.endpoint])).toEqual([['DOCKER_HOST', 'unix:///run/custom.sock']]);
    expect(list[0]?.options?.socketPath).toBe('/run/custom.sock');
    const bad = engineCandidates({ DOCKER_HOST: 'ssh://me@host' }, all);
    expect(bad.map((c) => c.strategy)).toEqual(['DOCKER_HOST']);
  });

  it('tries the default socket, then the rootless one, when DOCKER_HOST is not set', () => {
    const list = engineCandidates({ XDG_RUNTIME_DIR: '/run/user/1000' }, all);
    expect(list.filter((c) => !c.skipped).map((c) => c.strategy)).toEqual([
      'default socket',
      'rootless socket',
    ]);
  });

  it('keeps a socket strategy on its socket when the process environment names a TCP engine', () => {
    // docker-modem reads process.env.DOCKER_HOST itself and lets its host override a given socketPath.
    process.env.DOCKER_HOST = 'tcp://127.0.0.1:1';
    const socket = engineCandidates({}, all).find((c) => c.strategy === 'default socket');
    const client = new Dockerode(socket?.options) as unknown as {
      modem: { socketPath?: string; host?: string };
    };
    expect(client.modem.socketPath).toBe(DEFAULT_SOCKET);
    expect(client.modem.host).toBeUndefined();
  });

  it('reads tcp:// as host and port over http', () => {
    const [first] = engineCandidates({ DOCKER_HOST: 'tcp://10.0.0.5:2375' }, none);
    expect(first?.options).toEqual({ host: '10.0.0.5', port: 2375, protocol: 'http' });
  });

  it('says why a strategy was skipped', () => {
    const list = engineCandidates({}, none);
    expect(list.map((c) => c.skipped)).toEqual(['not set', 'no such socket']);
    const [bad] = engineCandidates({ DOCKER_HOST: 'ssh://me@host' }, none);
    expect(bad?.skipped).toMatch(/unsupported scheme 'ssh:'/);
  });

  it('adds the rootless socket when XDG_RUNTIME_DIR is set', () => {
    const list = engineCandidates({ XDG_RUNTIME_DIR: '/run/user/1000' }, all);
    expect(list.at(-1)).toMatchObject({
      strategy: 'rootless socket',
      endpoint: 'unix:///run/user/1000/docker.sock',
    });
  });
});

describe('unreachable engine', () => {
  it('lists every attempt and the fix', () => {
    const error = unreachableError([
      { strategy: 'DOCKER_HOST', error: 'not set' },
      { strategy: 'default socket', endpoint: 'unix:///var/run/docker.sock', error: 'connection refused' },
    ]);
    expect(error.code).toBe('E_ENGINE_UNREACHABLE');
    expect(error.message).toBe(
      'No Docker engine found (tried DOCKER_HOST: not set; default socket (unix:///var/run/docker.sock): connection refused). Run `grexal doctor --fix` or start Docker.',
    );
  });

  it('probing a socket that does not exist fails with the reason', async () => {
    const missing = '/tmp/grexal-no-such-dir/docker.sock';
    const error = await probeEngines([
      { strategy: 'DOCKER_HOST', skipped: 'not set' },
      { strategy: 'test socket', endpoint: `unix://${missing}`, options: { socketPath: missing } },
    ]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GrexalError);
    expect((error as GrexalError).message).toContain(`test socket (unix://${missing}): no such socket`);
  });
});
