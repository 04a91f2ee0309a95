/** The API's edges with fastify's inject(): auth, the error envelope, bad bodies, logging. */
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isLoopbackHost } from './auth.ts';
import { buildApi } from './index.ts';
import { serve } from './serve.ts';
import { type FakeRuntime, fakeRunner } from './testing/fake-runtime.ts';

const TOKEN = 'test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

let app: FastifyInstance;
let runtime: FakeRuntime;
let dispose: () => Promise<void>;
let logLines: string[];

beforeEach(async () => {
  const fake = await fakeRunner();
  runtime = fake.runtime;
  dispose = fake.dispose;
  logLines = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  app = await buildApi({ runner: fake.runner, token: TOKEN, logger: pino({ level: 'info' }, sink) });
});

afterEach(async () => {
  await app.close();
  await dispose();
});

const post = (body: unknown, headers: Record<string, string> = auth) =>
  app.inject({ method: 'POST', url: '/v1/sandboxes', headers, payload: body as object });

describe('auth', () => {
  it('refuses /v1/* without a token or with a wrong one, in the envelope', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong' }, { authorization: TOKEN }]) {
      const res = await app.inject({ method: 'GET', url: '/v1/sandboxes/sbx_1', headers });
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('E_UNAUTHORIZED');
      expect(res.headers['www-authenticate']).toBe('Bearer');
    }
  });

  it('lets the right token through, and leaves /healthz and the takeover routes to their own rules', async () => {
    expect((await app.inject({ url: '/v1/sandboxes/sbx_1', headers: auth })).statusCode).toBe(404);
    expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
    const takeover = await app.inject({ method: 'POST', url: '/v1/takeovers/t1/complete?token=x' });
    expect(takeover.json().error.code).toBe('E_TAKEOVER_NOT_FOUND');
  });

  it('knows loopback hosts', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '::', '10.0.0.1', 'example.com'].some(isLoopbackHost)).toBe(false);
  });

  it('serve refuses a non-loopback host without a token, naming the fix', async () => {
    const fake = await fakeRunner();
    try {
      await expect(serve({ runner: fake.runner, host: '0.0.0.0', port: 0 })).rejects.toMatchObject({
        code: 'E_TOKEN_REQUIRED',
        message: expect.stringContaining('GREXAL_RUNNER_TOKEN'),
      });
    } finally {
      await fake.dispose();
    }
  });
});

describe('bad input', () => {
  it('lists every problem with its code and path, unknown fields included', async () => {
    const res = await post({ command: [], limits: { memoryBytes: 1, bogus: 1 }, extra: true });
    expect(res.statusCode).toBe(400);
    const { error } = res.json();
    expect(error.code).toBe('E_VALIDATION');
    const problems = error.details.map((p: { code: string; path: string }) => `${p.code} ${p.path}`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'E_FIELD_REQUIRED image',
        'E_FIELD_INVALID command',
        'E_LIMIT_INVALID limits.memoryBytes',
        'E_FIELD_UNKNOWN limits',
        'E_FIELD_UNKNOWN ',
      ]),
    );
    expect(runtime.containers).toEqual([]);
  });

  it('names manifest problems with their full path', async () => {
    const res = await post({
      image: 'grexal/agent',
      manifest: { connections: [{ id: 'BAD id', mode: 'nope' }] },
    });
    expect(res.statusCode).toBe(400);
    const paths = res.json().error.details.map((p: { path: string }) => p.path);
    expect(paths.every((p: string) => p.startsWith('manifest.connections[0]'))).toBe(true);
  });

  it('answers bad JSON, empty JSON, a large body and a wrong type with their codes', async () => {
    const send = (payload: string, type = 'application/json') =>
      app.inject({
        method: 'POST',
        url: '/v1/sandboxes',
        headers: { ...auth, 'content-type': type },
        payload,
      });
    const bad = await send('{"image":');
    expect([bad.statusCode, bad.json().error.code]).toEqual([400, 'E_BODY_INVALID_JSON']);
    const empty = await send('');
    expect([empty.statusCode, empty.json().error.code]).toEqual([400, 'E_BODY_INVALID_JSON']);
    const proto = await send('{"image":"x","__proto__":{"a":1}}');
    expect([proto.statusCode, proto.json().error.code]).toEqual([400, 'E_BODY_INVALID_JSON']);
    const large = await send(JSON.stringify({ image: 'x'.repeat(1024 * 1024) }));
    expect([large.statusCode, large.json().error.code]).toEqual([413, 'E_BODY_TOO_LARGE']);
    const text = await send('image=x', 'text/plain');
    expect([text.statusCode, text.json().error.code]).toEqual([415, 'E_CONTENT_TYPE_UNSUPPORTED']);
  });

  it('answers unknown routes and unknown ids with 404 and a code', async () => {
    const route = await app.inject({ url: '/v2/nothing', headers: auth });
    expect([route.statusCode, route.json().error.code]).toEqual([404, 'E_ROUTE_NOT_FOUND']);
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/v1/sandboxes/sbx_never', headers: auth });
      expect([res.statusCode, res.json().error.code]).toEqual([404, 'E_SANDBOX_NOT_FOUND']);
    }
    const events = await app.inject({ url: '/v1/sandboxes/sbx_never/events', headers: auth });
    expect(events.statusCode).toBe(404);
  });

  it('refuses an image the engine does not have, before creating anything', async () => {
    const res = await post({ image: 'grexal/missing' });
    expect([res.statusCode, res.json().error.code]).toEqual([400, 'E_IMAGE_NOT_FOUND']);
    expect(res.json().error.message).toContain('grexal images build');
    expect(runtime.containers).toEqual([]);
  });

  it('refuses a runtime the engine has not registered', async () => {
    const res = await post({ image: 'grexal/agent', runtime: 'runsc' });
    expect([res.statusCode, res.json().error.code]).toEqual([400, 'E_RUNTIME_NOT_FOUND']);
    expect(runtime.containers).toEqual([]);
  });

  it('takes a JSON content type without a body on GET and DELETE', async () => {
    const headers = { ...auth, 'content-type': 'application/json' };
    for (const method of ['GET', 'DELETE'] as const) {
      const res = await app.inject({ method, url: '/v1/sandboxes/sbx_none', headers });
      expect(res.json().error.code).toBe('E_SANDBOX_NOT_FOUND');
    }
  });

  it('keeps serving after bad input', async () => {
    await post('not an object');
    expect((await app.inject({ url: '/healthz' })).json()).toMatchObject({ ok: true });
  });
});

describe('logging', () => {
  it('logs paths without query strings and never bodies', async () => {
    await app.inject({ url: '/v1/sandboxes/sbx_x/events?token=query-secret', headers: auth });
    await post({ image: 'grexal/missing', env: { X: 'body-secret' } });
    const log = logLines.join('');
    expect(log).toContain('/v1/sandboxes/sbx_x/events');
    expect(log).not.toContain('query-secret');
    expect(log).not.toContain('body-secret');
    expect(log).not.toContain(TOKEN);
  });
});

describe('documents', () => {
  it('serves an OpenAPI document generated from the body schema', async () => {
    const doc = (await app.inject({ url: '/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    const body = doc.components.schemas.CreateSandbox;
    expect(body.additionalProperties).toBe(false);
    expect(Object.keys(body.properties)).toEqual(
      expect.arrayContaining([
        'image',
        'command',
        'manifest',
        'credentials',
        'desktop',
        'limits',
        'metadata',
      ]),
    );
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/sandboxes/{id}/events', '/readyz']));
    expect(doc.paths['/readyz'].get.responses['503'].content['application/json'].schema.$ref).toBe(
      '#/components/schemas/Error',
    );
    expect(doc.info.description).toContain('E_NOT_READY');
  });

  it('serves Prometheus metrics, errors by code included', async () => {
    await app.inject({ url: '/v1/sandboxes/sbx_1' });
    const res = await app.inject({ url: '/metrics' });
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toContain('grexal_sandboxes{state="running"} 0');
    expect(res.body).toContain('grexal_errors_total{code="E_UNAUTHORIZED",source="api"} 1');
    expect(res.body).toContain('grexal_sandbox_start_seconds_bucket');
    expect(res.body).toContain('grexal_ctx_connect_total');
  });
});
