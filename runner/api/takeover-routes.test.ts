/** The takeover routes as mounted on the API's server: page, actions, and the stream's refusals. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { TakeoverBroker } from '../takeover/index.ts';
import { type ApiServer, serve } from './index.ts';
import { fakeRunner } from './testing/fake-runtime.ts';

let server: ApiServer;
let broker: TakeoverBroker;
let dispose: () => Promise<void>;

beforeEach(async () => {
  const fake = await fakeRunner();
  dispose = fake.dispose;
  broker = fake.runner.takeovers;
  server = await serve({ runner: fake.runner, token: 'api-token', port: 0 });
});

afterEach(async () => {
  await server.close();
  await dispose();
});

function open(sandboxId: string): { id: string; token: string } {
  const { takeover } = broker.request({
    sandboxId,
    reason: 'Log in',
    timeoutMs: 60_000,
    vncSocketPath: '/nonexistent/vnc.sock',
  });
  const token = new URL(broker.linkFor(takeover.id)!).searchParams.get('token')!;
  return { id: takeover.id, token };
}

/** The HTTP status a WebSocket upgrade was refused with, and the body's code. */
function refusal(path: string, origin?: string): Promise<{ status: number; code?: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}${path}`, origin ? { origin } : {});
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => {
        body += chunk;
      });
      res.on('end', () => {
        const code = body ? (JSON.parse(body) as { error?: { code?: string } }).error?.code : undefined;
        resolve({ status: res.statusCode ?? 0, ...(code ? { code } : {}) });
      });
    });
  });
}

describe('takeover routes on the API server', () => {
  it('serves the page with the takeover token and no bearer token, and refuses a wrong one', async () => {
    const { id, token } = open('sbx_page');
    const page = await fetch(`${server.url}/takeover/${id}?token=${token}`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect((await fetch(`${server.url}/takeover/${id}?token=${'x'.repeat(43)}`)).status).toBe(403);
  });

  it('refuses the stream before the handshake: unknown id, wrong token, foreign Origin, no desktop', async () => {
    const { id, token } = open('sbx_stream');
    const other = open('sbx_other');
    expect(await refusal(`/v1/takeovers/tk_unknown/stream?token=${token}`)).toMatchObject({ status: 404 });
    expect(await refusal(`/v1/takeovers/${id}/stream?token=${other.token}`)).toEqual({
      status: 403,
      code: 'E_TAKEOVER_TOKEN_INVALID',
    });
    expect(await refusal(`/v1/takeovers/${id}/stream?token=${token}`, 'https://evil.example')).toEqual({
      status: 403,
      code: 'E_TAKEOVER_ORIGIN',
    });
    expect(await refusal(`/v1/takeovers/${id}/stream?token=${token}`, server.url)).toEqual({
      status: 503,
      code: 'E_DESKTOP_UNAVAILABLE',
    });
    expect(await refusal('/v1/sandboxes/whatever')).toMatchObject({ status: 404 });
  });

  it('answers the page’s status poll', async () => {
    const { id, token } = open('sbx_viewer');
    const res = await fetch(`${server.url}/v1/takeovers/${id}/viewer?token=${token}&viewer=a`);
    expect(res.status).toBe(200);
    // No stream open: this key has no control yet, and nobody watches.
    expect(await res.json()).toMatchObject({ controls: false, viewers: 0, expiresAt: expect.any(String) });
    expect((await fetch(`${server.url}/v1/takeovers/${id}/viewer?token=nope`)).status).toBe(403);
  });

  it('counts each viewer’s reported first frame in /metrics', async () => {
    const { id, token } = open('sbx_timing');
    const report = JSON.stringify({ timeOrigin: 1_796_000_000_000, connectMs: 120, firstFrameMs: 171 });
    const post = (viewer: string) =>
      fetch(`${server.url}/v1/takeovers/${id}/timing?token=${token}&viewer=${viewer}`, {
        method: 'POST',
        body: report,
      });
    expect((await post('a')).status).toBe(204);
    expect((await post('a')).status).toBe(204);
    const metrics = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer api-token' } });
    const body = await metrics.text();
    expect(body).toContain('grexal_takeover_first_frame_seconds_bucket{le="0.1"} 0');
    expect(body).toContain('grexal_takeover_first_frame_seconds_bucket{le="0.2"} 1');
    expect(body).toContain('grexal_takeover_first_frame_seconds_count 1');
  });

  it('sets the broker base URL to where the API listens', () => {
    const { id } = open('sbx_link');
    expect(broker.linkFor(id)!.startsWith(`${server.url}/takeover/${id}?token=`)).toBe(true);
  });
});
