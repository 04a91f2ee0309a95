/**
 * Property: the API, through the real fastify app over a real Runner on the fake engine, answers
 * any body and any request on its routes with 2xx for valid input or a 4xx whose `error.code` is
 * documented; a refused request creates nothing (no container, nothing new in the state dir);
 * the app still answers afterwards.
 */
import { readdir } from 'node:fs/promises';
import fc from 'fast-check';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../errors.ts';
import { designConnections, designCredentials } from '../inject/testing/design-connections.ts';
import { budget, DOCUMENTED_CODES, FUZZ_TEST_TIMEOUT_MS, oneAtATime } from '../testing/fuzz.ts';
import { hostileString, nearValid } from '../testing/json-mutations.ts';
import { buildApi } from './index.ts';
import { type FakeRuntime, fakeRunner } from './testing/fake-runtime.ts';

let app: FastifyInstance;
let runtime: FakeRuntime;
let stateDir: string;
let dispose: () => Promise<void>;

beforeAll(async () => {
  const fake = await fakeRunner();
  ({ runtime, stateDir, dispose } = fake);
  app = await buildApi({ runner: fake.runner, maxSandboxes: 4 });
});
afterAll(async () => {
  await app.close();
  await dispose();
});

const validBody = () => ({
  image: 'grexal/agent',
  command: ['node', 'agent.mjs'],
  env: { MODE: 'fast' },
  manifest: { connections: designConnections() },
  credentials: designCredentials(),
  limits: { memoryBytes: 512 * 1024 * 1024, cpus: 1, pidsLimit: 256, timeoutMs: 60_000 },
  metadata: { job: '42' },
});

const snapshot = async () => (await readdir(stateDir, { recursive: true })).sort().join('\n');

/** A 4xx in the envelope with a registered code, and documented problem codes in its details. */
function checkRefusal(res: LightMyRequestResponse, what: string): void {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(res.statusCode, `${what}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
  if (res.headers['content-type']?.toString().startsWith('text/html')) {
    // The takeover page answers a browser with a page that says what went wrong.
    expect(res.body).toContain('<html');
    return;
  }
  const { error } = res.json() as { error: { code: string; message: string; details?: unknown } };
  expect(Object.keys(ERROR_CODES), what).toContain(error.code);
  expect(ERROR_CODES[error.code as keyof typeof ERROR_CODES].status).toBe(res.statusCode);
  expect(typeof error.message).toBe('string');
  if (Array.isArray(error.details)) {
    for (const p of error.details as { code: string; path: unknown; message: unknown }[]) {
      expect(DOCUMENTED_CODES, `${what}: problem ${p.code}`).toContain(p.code);
      expect(typeof p.path).toBe('string');
      expect(typeof p.message).toBe('string');
    }
  }
}

/**
 * POSTs a raw body; a created sandbox is deleted again so the next run starts from the same state.
 * One at a time: a run the time limit abandoned finishes before the next one lists the state dir.
 */
const create = oneAtATime(async (payload: string, contentType: string | undefined): Promise<void> => {
  const containers = runtime.containers.length;
  const before = await snapshot();
  const res = await app.inject({
    method: 'POST',
    url: '/v1/sandboxes',
    payload,
    headers: contentType === undefined ? {} : { 'content-type': contentType },
  });
  if (res.statusCode === 201) {
    const { id } = res.json() as { id: string };
    expect((await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${id}` })).statusCode).toBe(204);
    expect(runtime.containers.every((c) => c.removed)).toBe(true);
  } else {
    checkRefusal(res, `POST ${payload.slice(0, 200)}`);
    expect(runtime.containers.length, 'a refused request created a container').toBe(containers);
    expect(await snapshot(), 'a refused request left something in the state dir').toBe(before);
  }
  expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
});

describe('the API under fuzzing', () => {
  it('creates the valid body the mutations start from', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/sandboxes', payload: validBody() });
    expect(res.statusCode).toBe(201);
    await app.inject({ method: 'DELETE', url: `/v1/sandboxes/${res.json().id}` });
  });

  it(
    'answers near-valid bodies with 201 or a documented 4xx, creating nothing when it refuses',
    async () => {
      await fc.assert(
        fc.asyncProperty(nearValid(validBody), async (body) => {
          await create(JSON.stringify(body) ?? 'null', 'application/json');
        }),
        budget(600, 5000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'answers arbitrary payloads and content types with a documented 4xx',
    async () => {
      const payload = fc.oneof(
        fc.json({ maxDepth: 3 }),
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.constantFrom(
          '',
          '{',
          '{"__proto__":{"x":1}}',
          '{"constructor":{"prototype":{"x":1}}}',
          'null',
          '[]',
        ),
      );
      const contentType = fc.constantFrom(
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        '',
        undefined,
      );
      await fc.assert(
        fc.asyncProperty(payload, contentType, async (p, ct) => {
          await create(p, ct);
        }),
        budget(600, 3000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );

  it(
    'answers any method on any route with an ids, token or query it makes up with a documented 4xx',
    async () => {
      const segment = fc.oneof(
        // Every byte percent-encoded (lone surrogates too, which encodeURIComponent refuses); 8 UTF-16
        // units at most, so at most 96 characters.
        hostileString.map((s) =>
          [...Buffer.from(s.slice(0, 8))].map((b) => `%${b.toString(16).padStart(2, '0')}`).join(''),
        ),
        // Malformed percent-encodings and path parameters over fastify's 100-character limit
        // included: fastify's own answers to those must come in the envelope too.
        fc.constantFrom('%00', '%2e%2e', '..', '%E2%80%AE', '%20', '%', '%zz', '%C0%AF', '%FF%FE'),
        fc.stringMatching(/^[A-Za-z0-9_-]{1,200}$/),
        fc.constantFrom('sbx_x', `sbx_${'0'.repeat(40)}`, `tk_${'A'.repeat(30)}`, '__proto__', 'constructor'),
      );
      const route = fc
        .tuple(
          fc.constantFrom(
            '/v1/sandboxes/{s}',
            '/v1/sandboxes/{s}/events?lastEventId={q}',
            '/v1/sandboxes/{s}/credentials/{q}',
            '/takeover/{s}?token={q}',
            '/takeover/assets/{s}',
            '/v1/takeovers/{s}/complete?token={q}',
            '/v1/takeovers/{s}/cancel',
            '/v1/takeovers/{s}/stream?token={q}',
            '/v1/{s}',
            '/{s}',
          ),
          segment,
          segment,
        )
        .map(([template, s, q]) => template.replace('{s}', s).replace('{q}', q));
      const method = fc.constantFrom('GET', 'DELETE', 'POST', 'PUT', 'PATCH', 'HEAD', 'OPTIONS');
      const body = fc.option(fc.oneof(fc.json({ maxDepth: 2 }), fc.string({ maxLength: 50 })), {
        nil: undefined,
      });
      await fc.assert(
        fc.asyncProperty(method, route, body, async (m, url, payload) => {
          const containers = runtime.containers.length;
          const res = await app.inject({
            method: m as 'GET',
            url,
            ...(payload === undefined ? {} : { payload, headers: { 'content-type': 'application/json' } }),
          });
          // Only the static assets can exist for a made-up request; the rest must be a refusal.
          if (res.statusCode >= 300 || !url.startsWith('/takeover/assets/')) {
            if (m === 'HEAD' || res.statusCode === 304) expect(res.statusCode).toBeLessThan(500);
            else checkRefusal(res, `${m} ${url}`);
          }
          expect(runtime.containers.length).toBe(containers);
          expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
        }),
        budget(1500, 4000),
      );
    },
    FUZZ_TEST_TIMEOUT_MS,
  );
});
