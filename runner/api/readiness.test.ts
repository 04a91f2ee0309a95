import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import { DockerRuntime } from '../runtime/index.ts';
import { buildApi } from './app.ts';
import { Readiness } from './readiness.ts';
import { type FakeRuntime, fakeRunner } from './testing/fake-runtime.ts';

let runtime: FakeRuntime;
let dispose: () => Promise<void>;
let runner: Awaited<ReturnType<typeof fakeRunner>>['runner'];

beforeEach(async () => {
  const fake = await fakeRunner();
  ({ runtime, dispose, runner } = fake);
  runtime.images.add('grexal/desktop');
});
afterEach(async () => dispose());

describe('Readiness', () => {
  it('is ready when the engine answers and every image is there', async () => {
    expect(await new Readiness(runtime).check()).toEqual({
      ready: true,
      engine: 'fake://',
      images: ['grexal/agent', 'grexal/desktop'],
    });
  });

  it('names each missing image', async () => {
    runtime.images.clear();
    const answer = await new Readiness(runtime, { images: ['grexal/agent', 'grexal/desktop'] }).check();
    expect(answer).toBeInstanceOf(GrexalError);
    const e = answer as GrexalError;
    expect([e.code, e.status]).toEqual(['E_NOT_READY', 503]);
    expect((e.details as { code: string; path: string }[]).map((p) => `${p.code} ${p.path}`)).toEqual([
      'E_IMAGE_NOT_FOUND images["grexal/agent"]',
      'E_IMAGE_NOT_FOUND images["grexal/desktop"]',
    ]);
  });

  it('answers when the engine is down or hangs, and probes at most once per cache period', async () => {
    let calls = 0;
    runtime.info = () => {
      calls++;
      return Promise.reject(new GrexalError('E_ENGINE_UNREACHABLE', 'No Docker engine found.'));
    };
    const down = new Readiness(runtime, { cacheMs: 60_000 });
    const [a, b] = await Promise.all([down.check(), down.check()]);
    expect(a).toBe(b);
    expect(await down.check()).toBe(a);
    expect(calls).toBe(1);
    expect((a as GrexalError).details).toMatchObject([{ code: 'E_ENGINE_UNREACHABLE', path: 'engine' }]);
    runtime.info = () => new Promise(() => {});
    const hung = await new Readiness(runtime, { timeoutMs: 20 }).check();
    expect((hung as GrexalError).details).toMatchObject([{ code: 'E_TIMEOUT', path: 'engine' }]);
  });
});

describe('GET /readyz and /healthz', () => {
  it('answers 200 when ready, 503 in the envelope otherwise, while /healthz stays 200', async () => {
    const app = await buildApi({ runner, token: 'readyz-token-0123456789', readiness: { cacheMs: 0 } });
    try {
      const ready = await app.inject({ url: '/readyz' });
      expect([ready.statusCode, ready.json().ready]).toEqual([200, true]);
      runtime.images.delete('grexal/desktop');
      const missing = await app.inject({ url: '/readyz' });
      expect(missing.statusCode).toBe(503);
      expect(missing.json().error).toMatchObject({
        code: 'E_NOT_READY',
        details: [{ code: 'E_IMAGE_NOT_FOUND', path: 'images["grexal/desktop"]' }],
      });
      expect(missing.json().error.message).toContain('grexal/desktop');
      expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});

describe('Readiness over the Docker client', () => {
  it('names the engine unreachable once its socket is gone', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'grexal-readyz-'));
    try {
      const docker = new Dockerode({ socketPath: join(dir, 'docker.sock') });
      const answer = await new Readiness(new DockerRuntime(docker, `unix://${dir}/docker.sock`)).check();
      expect((answer as GrexalError).details).toMatchObject([
        { code: 'E_ENGINE_UNREACHABLE', path: 'engine' },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
