/**
 * The page's timing report (POST /v1/takeovers/:id/timing): a real node:http server and broker.
 * What is counted reaches onViewerTiming once per viewer; anything else is refused and counted
 * by no one.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TakeoverBroker } from './broker.ts';
import { startTakeoverServer, type TakeoverServer } from './http.ts';
import { MAX_VIEWERS, type ViewerTiming } from './http-timing.ts';

let broker: TakeoverBroker;
let server: TakeoverServer;
let reports: ViewerTiming[];

beforeEach(async () => {
  broker = new TakeoverBroker();
  reports = [];
  server = await startTakeoverServer({ broker, heartbeatMs: 0, onViewerTiming: (t) => reports.push(t) });
});

afterEach(async () => {
  broker.close();
  await server.close();
});

function open(): { id: string; token: string } {
  const { takeover } = broker.request({
    sandboxId: 'sb1',
    reason: 'Log in',
    timeoutMs: 60_000,
    vncSocketPath: '/nonexistent/vnc.sock',
  });
  return { id: takeover.id, token: new URL(broker.linkFor(takeover.id)!).searchParams.get('token')! };
}

const REPORT = { timeOrigin: 1_796_000_000_000.5, connectMs: 120.4, firstFrameMs: 171.9 };

function post(id: string, token: string | undefined, body: unknown, viewer = 'v1', headers = {}) {
  const url = new URL(`/v1/takeovers/${id}/timing`, server.url);
  if (token !== undefined) url.searchParams.set('token', token);
  url.searchParams.set('viewer', viewer);
  return fetch(url, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('the timing report', () => {
  it('is counted once per viewer, with the takeover it belongs to', async () => {
    const { id, token } = open();
    expect((await post(id, token, REPORT)).status).toBe(204);
    expect((await post(id, token, { ...REPORT, firstFrameMs: 999 })).status).toBe(204);
    expect((await post(id, token, REPORT, 'v2')).status).toBe(204);
    expect(reports).toEqual([
      { ...REPORT, takeoverId: id },
      { ...REPORT, takeoverId: id },
    ]);
  });

  it(`counts at most ${MAX_VIEWERS} viewers of one takeover`, async () => {
    const { id, token } = open();
    for (let i = 0; i < MAX_VIEWERS + 3; i++)
      expect((await post(id, token, REPORT, `v${i}`)).status).toBe(204);
    expect(reports).toHaveLength(MAX_VIEWERS);
  });

  it.each([
    ['no token', undefined, 401],
    ['a wrong token', 'nope', 403],
  ])('is refused with %s', async (_, token, status) => {
    const { id } = open();
    expect((await post(id, token, REPORT)).status).toBe(status);
    expect(reports).toEqual([]);
  });

  it('is refused for an unknown takeover, a foreign origin, and a GET', async () => {
    const { id, token } = open();
    expect((await post('tk_nonesuch', token, REPORT)).status).toBe(404);
    expect((await post(id, token, REPORT, 'v1', { Origin: 'http://elsewhere.test' })).status).toBe(403);
    const get = await fetch(new URL(`/v1/takeovers/${id}/timing?token=${token}`, server.url));
    expect(get.status).toBe(405);
    expect(reports).toEqual([]);
  });

  it.each([
    ['not JSON', '{', undefined],
    ['a missing field', { timeOrigin: 1, connectMs: 1 }, 'firstFrameMs'],
    ['a negative figure', { ...REPORT, connectMs: -1 }, 'connectMs'],
    ['a figure over ten minutes', { ...REPORT, firstFrameMs: 600_001 }, 'firstFrameMs'],
    ['a string', { ...REPORT, firstFrameMs: '171' }, 'firstFrameMs'],
    ['an unknown field', { ...REPORT, password: 'canary' }, 'password'],
  ])('is refused with %s, naming the field', async (_, body, path) => {
    const { id, token } = open();
    const response = await post(id, token, body);
    expect(response.status).toBe(400);
    const text = await response.text();
    expect(text).toContain('E_VALIDATION');
    if (path) expect(text).toContain(path);
    expect(text).not.toContain('canary');
    expect(reports).toEqual([]);
  });

  it('is refused over 1 KiB, before it is read further', async () => {
    const { id, token } = open();
    const response = await post(id, token, { ...REPORT, pad: 'x'.repeat(2000) });
    expect(response.status).toBe(400);
    expect(reports).toEqual([]);
  });
});
