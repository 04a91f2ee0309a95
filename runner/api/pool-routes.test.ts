/** Warm pools through the API over a real Runner on a fake engine whose "supervisor" bootstraps. */
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CtxLink } from '../sandbox/fake-supervisor-link.ts';
import type { Runner } from '../sandbox/index.ts';
import { buildApi } from './index.ts';
import { type FakeContainer, type FakeRuntime, fakeRunner } from './testing/fake-runtime.ts';

/**
 * Waits for what the pool does in the background (refills hold back up to a second): bounded,
 * but never a time the test asserts, so a loaded machine cannot fail it.
 */
const settled = <T>(check: () => T | Promise<T>) => vi.waitFor(check, { timeout: 15_000, interval: 25 });

let app: FastifyInstance;
let runner: Runner;
let runtime: FakeRuntime;
let dispose: () => Promise<void>;
/** What each container's bootstrap answered, by sandbox id. */
const answers = new Map<string, { command: string[]; env: Record<string, string> }>();

async function setUp(): Promise<void> {
  ({ runner, runtime, dispose } = await fakeRunner());
  // As the real supervisor: ask for the bootstrap at once, run the command (print it), exit.
  runtime.onStart = (container: FakeContainer) => {
    void (async () => {
      // An entry started while the test tears down finds its socket gone: nothing to do then.
      const link = await CtxLink.open(join(container.spec.hostRunDir, 'ctx.sock')).catch(() => undefined);
      if (!link) return;
      const boot = (await link.call('bootstrap', { argv: [] }).catch(() => undefined)) as
        | { command: string[]; env: Record<string, string> }
        | undefined;
      if (!boot) return;
      answers.set(container.sandboxId, boot);
      container.stdout.write(`${boot.command.join(' ')}\n`);
      link.close();
      container.end(0);
    })();
  };
  app = await buildApi({ runner });
}

afterEach(async () => {
  await app.close();
  await dispose();
  answers.clear();
});

const put = (name: string, body: object) =>
  app.inject({ method: 'PUT', url: `/v1/pools/${name}`, payload: body });
const post = (body: object) => app.inject({ method: 'POST', url: '/v1/sandboxes', payload: body });
const status = async (name: string) => (await app.inject({ url: `/v1/pools/${name}` })).json();

describe('pools through the API', () => {
  it('refuses bad specs with codes, paths and fixes, creating nothing', async () => {
    await setUp();
    const problems = async (name: string, body: object) =>
      ((await put(name, body)).json().error.details as { code: string; path: string; fix?: string }[]).map(
        (p) => `${p.code} ${p.path}`,
      );
    expect(await problems('sh', { image: 'grexal/agent', size: 65 })).toEqual(['E_POOL_SIZE_INVALID size']);
    expect(await problems('Bad!', { image: 'grexal/agent' })).toEqual(['E_POOL_NAME_INVALID name']);
    expect(await problems('sh', { image: 'grexal/agent', limits: { memoryBytes: 2 ** 50 } })).toEqual([
      'E_POOL_LIMIT_HOST limits.memoryBytes',
    ]);
    expect(await problems('sh', { image: 'grexal/agent', desktop: true })).toEqual([
      'E_POOL_DESKTOP_IMAGE desktop',
    ]);
    const missing = (await put('sh', { image: 'acme/missing' })).json().error.details[0];
    expect(missing).toMatchObject({ code: 'E_POOL_IMAGE_NOT_FOUND', path: 'image' });
    expect(missing.fix).toContain('grexal images build');
    expect((await app.inject({ url: '/v1/pools' })).json()).toEqual({ pools: [] });
    expect(runtime.containers).toHaveLength(0);
    const absent = await app.inject({ url: '/v1/pools/nope' });
    expect(absent.statusCode).toBe(404);
    expect(absent.json().error.code).toBe('E_POOL_NOT_FOUND');
  });

  it('serves a matching request warm with the run bound at the claim, a mismatch cold, and refills', async () => {
    await setUp();
    expect((await put('sh', { image: 'grexal/agent', size: 2 })).statusCode).toBe(201);
    await settled(() => expect(runtime.containers).toHaveLength(2));
    await settled(async () => expect((await status('sh')).ready).toBe(2));
    // The entries exist, started, and their supervisors wait: nothing of a run has reached them.
    expect(answers.size).toBe(0);
    const pooledIds = runtime.containers.map((c) => c.sandboxId);

    const warm = await post({ image: 'grexal/agent', command: ['echo', 'run-1'], env: { RUN: 'one' } });
    expect(warm.statusCode).toBe(201);
    expect(warm.json()).toMatchObject({ warm: true });
    const id = warm.json().id;
    expect(pooledIds).toContain(id);
    await settled(() => expect(answers.get(id)).toBeDefined());
    expect(answers.get(id)?.command).toEqual(['echo', 'run-1']);
    expect(answers.get(id)?.env['RUN']).toBe('one');
    const events = (await app.inject({ url: `/v1/sandboxes/${id}/events` })).body;
    expect(events).toContain('"type":"claimed","warm":true');
    expect(events).toContain('echo run-1');
    expect((await app.inject({ url: `/v1/sandboxes/${id}` })).json()).toMatchObject({
      warm: true,
      state: 'exited',
    });

    // Other limits: cold, never an error; a pool named explicitly but not matching: cold too.
    const cold = await post({ image: 'grexal/agent', command: ['x'], limits: { memoryBytes: 64 * 2 ** 20 } });
    expect(cold.json()).toMatchObject({ warm: false });
    expect(pooledIds).not.toContain(cold.json().id);
    const none = await post({ image: 'grexal/agent', command: ['x'], network: 'none' });
    expect(none.json()).toMatchObject({ warm: false });
    const named = await post({ image: 'grexal/agent', command: ['x'], pool: 'other' });
    expect(named.json()).toMatchObject({ warm: false });
    const badName = await post({ image: 'grexal/agent', command: ['x'], pool: 'Bad!' });
    expect(badName.json().error.details[0]).toMatchObject({ code: 'E_POOL_NAME_INVALID', path: 'pool' });

    await settled(async () => expect((await status('sh')).ready).toBe(2));
    const second = await post({ image: 'grexal/agent', command: ['echo', 'run-2'], pool: 'sh' });
    expect(second.json()).toMatchObject({ warm: true });
    expect(second.json().id).not.toBe(id);

    const metrics = (await app.inject({ url: '/metrics' })).body;
    expect(metrics).toContain('grexal_pool_claims_total{warm="true"} 2');
    expect(metrics).toContain('grexal_pool_claims_total{warm="false"} 3');
    expect(metrics).toContain('grexal_pool_size{pool="sh"} 2');
    expect(metrics).toMatch(/grexal_pool_claim_seconds_count\{warm="true"\} 2/);
  });

  it('a refused request gives its entry back unbound; DELETE drains', async () => {
    await setUp();
    await put('sh', { image: 'grexal/agent', size: 1 });
    await settled(async () => expect((await status('sh')).ready).toBe(1));
    const refused = await post({
      image: 'grexal/agent',
      command: ['x'],
      manifest: { connections: [{ id: 'gh', mode: 'env', env: ['GH_TOKEN'] }] },
    });
    expect(refused.statusCode).toBe(400);
    expect((await status('sh')).ready).toBe(1);
    expect(answers.size).toBe(0);
    expect((await app.inject({ method: 'DELETE', url: '/v1/pools/sh' })).statusCode).toBe(204);
    expect(runtime.containers.every((c) => c.removed)).toBe(true);
    expect((await app.inject({ method: 'DELETE', url: '/v1/pools/sh' })).statusCode).toBe(404);
  });
});
