/** PUT and DELETE of a running sandbox's connection, over a real Runner on a fake engine. */
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApi } from './index.ts';
import { type FakeContainer, type FakeRuntime, fakeRunner } from './testing/fake-runtime.ts';

let app: FastifyInstance;
let runtime: FakeRuntime;
let dispose: () => Promise<void>;

afterEach(async () => {
  await app.close();
  await dispose();
});

const manifest = {
  connections: [
    { id: 'openai', mode: 'secret_input', fields: [{ key: 'api_key' }] },
    { id: 'gcp', mode: 'file_upload', required: false, files: [{ name: 'sa.json' }] },
    { id: 'linkedin', mode: 'browser_login' },
  ],
};

/** A running sandbox (the fake engine has no supervisor: its agent never reports `started`). */
async function running(): Promise<{ id: string; container: FakeContainer }> {
  const fake = await fakeRunner();
  ({ runtime, dispose } = fake);
  app = await buildApi({ runner: fake.runner });
  const started = new Promise<FakeContainer>((resolve) => {
    runtime.onStart = resolve;
  });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/sandboxes',
    payload: {
      image: 'grexal/agent',
      command: ['agent'],
      manifest,
      credentials: { openai: { fields: { api_key: 'sk-route-canary-01' } } },
    },
  });
  return { id: res.json().id, container: await started };
}

const put = (id: string, connectionId: string, payload: unknown) =>
  app.inject({
    method: 'PUT',
    url: `/v1/sandboxes/${id}/credentials/${connectionId}`,
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(payload),
  });

describe('credential routes', () => {
  it('refuses bad changes with their code, path and fix, in any phase', async () => {
    const { id } = await running();
    const cases: [string, unknown, string][] = [
      ['github', { fields: { api_key: 'sk-route-canary-02' } }, 'E_CREDENTIAL_UNDECLARED@connectionId'],
      ['linkedin', {}, 'E_CONNECTION_NOT_UPDATABLE@connectionId'],
      ['openai', { files: {} }, 'E_CREDENTIAL_MODE_MISMATCH@'],
      ['openai', { fields: { api_key: 'short' } }, 'E_SECRET_TOO_SHORT@fields.api_key'],
    ];
    for (const [connectionId, body, expected] of cases) {
      const res = await put(id, connectionId, body);
      expect(res.statusCode).toBe(400);
      const { error } = res.json();
      expect(error.code).toBe('E_VALIDATION');
      expect(error.details.map((d: { code: string; path: string }) => `${d.code}@${d.path}`)).toEqual([
        expected,
      ]);
      expect(error.details[0].fix).toEqual(expect.any(String));
      expect(res.body).not.toContain('sk-route-canary-02');
    }
  });

  it('refuses a file change before the agent has started, and any change once the sandbox ended', async () => {
    const { id, container } = await running();
    const early = await put(id, 'gcp', { files: { 'sa.json': { base64: 'eyJrIjoidmFsdWUifQ==' } } });
    expect([early.statusCode, early.json().error.code]).toEqual([409, 'E_SANDBOX_STARTING']);
    // A change without files goes through: later connect calls answer with it.
    const rotated = await put(id, 'openai', { fields: { api_key: 'sk-route-canary-03' } });
    expect([rotated.statusCode, rotated.json()]).toEqual([
      200,
      { connectionId: 'openai', outcome: 'updated' },
    ]);
    const removed = await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}/credentials/openai` });
    expect(removed.statusCode).toBe(204);
    container.end(0);
    await app.inject({ url: `/v1/sandboxes/${id}/events` });
    const late = await put(id, 'openai', { fields: { api_key: 'sk-route-canary-04' } });
    expect([late.statusCode, late.json().error.code]).toEqual([409, 'E_SANDBOX_ENDED']);
    const lateDelete = await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}/credentials/openai` });
    expect([lateDelete.statusCode, lateDelete.json().error.code]).toEqual([409, 'E_SANDBOX_ENDED']);
    const unknown = await put('sbx_nope', 'openai', {});
    expect(unknown.statusCode).toBe(404);
  });

  it('answers any body for any connection with a documented refusal or a change, never a 5xx', async () => {
    const { id } = await running();
    const connectionId = fc.constantFrom(
      'openai',
      'gcp',
      'linkedin',
      '__proto__',
      'constructor',
      'x'.repeat(200),
    );
    const body = fc.oneof(
      fc.json({ maxDepth: 3 }).map((text) => JSON.parse(text) as unknown),
      fc.record({ fields: fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 })) }),
      fc.record({
        files: fc.dictionary(fc.string({ maxLength: 10 }), fc.record({ base64: fc.base64String() })),
      }),
    );
    await fc.assert(
      fc.asyncProperty(connectionId, body, async (connection, payload) => {
        const res = await put(id, connection, payload);
        expect([200, 400, 404, 409, 414]).toContain(res.statusCode);
        if (res.statusCode !== 200) expect(res.json().error.code).toMatch(/^E_[A-Z_]+$/);
      }),
      { numRuns: 200 },
    );
  });

  it('is described in the OpenAPI document', async () => {
    await running();
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    const path = doc.paths['/v1/sandboxes/{id}/credentials/{connectionId}'];
    expect(Object.keys(path)).toEqual(expect.arrayContaining(['put', 'delete']));
    expect(doc.components.schemas.CredentialChanged).toBeDefined();
  });
});
