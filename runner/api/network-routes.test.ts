/** The network policy through the API on a fake engine: validated before anything exists, PATCHed, shown. */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApi } from './index.ts';
import { type FakeRuntime, fakeRunner } from './testing/fake-runtime.ts';

let app: FastifyInstance;
let runtime: FakeRuntime;
let dispose: () => Promise<void>;

afterEach(async () => {
  await app.close();
  await dispose();
});

async function setUp(): Promise<void> {
  const fake = await fakeRunner();
  ({ runtime, dispose } = fake);
  app = await buildApi({ runner: fake.runner });
}

const create = (body: object) =>
  app.inject({
    method: 'POST',
    url: '/v1/sandboxes',
    payload: { image: 'grexal/agent', command: ['agent'], ...body },
  });

describe('network policy through the API', () => {
  it('refuses a bad policy with every problem, creating nothing', async () => {
    await setUp();
    const res = await create({
      network: { mode: 'allow', allow: ['*', '10.0.0.0/8', 'a.test:0', 'ok.test'] },
    });
    expect(res.statusCode).toBe(400);
    expect(
      res.json().error.details.map((p: { code: string; path: string }) => `${p.code} ${p.path}`),
    ).toEqual([
      'E_NETWORK_WILDCARD_INVALID network.allow[0]',
      'E_NETWORK_DESTINATION_DENIED network.allow[1]',
      'E_NETWORK_PORT_INVALID network.allow[2]',
    ]);
    expect(runtime.containers).toHaveLength(0);
  });

  it("refuses a manifest network the orchestrator's does not permit, naming both", async () => {
    await setUp();
    const res = await create({
      network: { mode: 'allow', allow: ['a.test'] },
      manifest: { connections: [], network: { mode: 'allow', allow: ['b.test'] } },
    });
    expect(res.statusCode).toBe(400);
    const [problem] = res.json().error.details;
    expect(problem).toMatchObject({ code: 'E_NETWORK_NOT_PERMITTED', path: 'manifest.network' });
    expect(problem.message).toContain('manifest: allow [b.test]');
    expect(problem.message).toContain("orchestrator's policy (allow [a.test])");
    expect(runtime.containers).toHaveLength(0);
  });

  it('shows the policy, defaults to public, and PATCHes it', async () => {
    await setUp();
    const plain = (await create({})).json();
    expect((await app.inject({ url: `/v1/sandboxes/${plain.id}` })).json().network).toEqual({
      mode: 'public',
    });
    const { id } = (await create({ network: 'none' })).json();
    expect((await app.inject({ url: `/v1/sandboxes/${id}` })).json().network).toEqual({ mode: 'none' });
    const patch = (payload: unknown) =>
      app.inject({ method: 'PATCH', url: `/v1/sandboxes/${id}/network`, payload: payload as object });
    const bad = await patch({ mode: 'allow', allow: ['169.254.169.254'] });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details[0]).toMatchObject({
      code: 'E_NETWORK_DESTINATION_DENIED',
      path: 'network.allow[0]',
    });
    const good = await patch({ mode: 'allow', allow: ['api.example.test:443'] });
    expect(good.statusCode).toBe(200);
    expect(good.json()).toEqual({ network: { mode: 'allow', allow: ['api.example.test:443'] } });
    expect((await app.inject({ url: `/v1/sandboxes/${id}` })).json().network).toEqual({
      mode: 'allow',
      allow: ['api.example.test:443'],
    });
    expect(
      (await app.inject({ method: 'PATCH', url: '/v1/sandboxes/nope/network', payload: { mode: 'none' } }))
        .statusCode,
    ).toBe(404);
  });
});
