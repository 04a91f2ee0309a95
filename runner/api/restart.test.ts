/** After a restart on the same state dir: the earlier runner's ids are 410, random ones still 404. */
import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { currentInstanceId } from '../runtime/index.ts';
import { type ApiServer, serve } from './index.ts';
import { fakeRunner } from './testing/fake-runtime.ts';

let stateDir: string;
let cleanups: (() => Promise<void>)[];
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'grexal-restart-'));
  cleanups = [];
});
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await rm(stateDir, { recursive: true, force: true });
});

async function runnerOn(
  instanceId: string,
): Promise<{ server: ApiServer; fake: Awaited<ReturnType<typeof fakeRunner>> }> {
  const fake = await fakeRunner({ stateDir, instanceId });
  const server = await serve({ runner: fake.runner, port: 0 });
  cleanups.push(async () => {
    await server.close();
    await fake.dispose();
  });
  return { server, fake };
}

describe('ids across a runner restart', () => {
  it("answers 410 for an earlier runner's sandbox and takeover, 404 for a random id", async () => {
    // The earlier instance: a pid of this host that no longer runs.
    const before = await runnerOn(`${hostname()}/999999999-1`);
    const created = await fetch(`${before.server.url}/v1/sandboxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'grexal/agent', command: ['agent'] }),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const { takeover } = before.fake.runner.takeovers.request({
      sandboxId: id,
      reason: 'Log in',
      timeoutMs: 60_000,
      vncSocketPath: '/nonexistent/vnc.sock',
    });
    const link = new URL(before.fake.runner.takeovers.linkFor(takeover.id)!);

    const after = await runnerOn(`${hostname()}/${process.pid}-restarted`);
    const base = after.server.url;
    for (const [method, path] of [
      ['GET', `/v1/sandboxes/${id}`],
      ['GET', `/v1/sandboxes/${id}/events`],
      ['DELETE', `/v1/sandboxes/${id}`],
    ] as const) {
      const res = await fetch(`${base}${path}`, { method });
      expect(res.status, `${method} ${path}`).toBe(410);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_SANDBOX_GONE');
    }
    const page = await fetch(`${base}${link.pathname}${link.search}`);
    expect(page.status).toBe(410);
    expect(await page.text()).toContain('This session ended when the runner restarted');
    for (const verb of ['complete', 'cancel']) {
      const res = await fetch(`${base}/v1/takeovers/${takeover.id}/${verb}${link.search}`, {
        method: 'POST',
      });
      expect(res.status).toBe(410);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('E_TAKEOVER_ENDED');
      expect(body.error.message).toContain('ended when the runner restarted');
    }

    const random = `sbx_${'0'.repeat(40)}`;
    expect((await fetch(`${base}/v1/sandboxes/${random}`)).status).toBe(404);
    expect((await fetch(`${base}/v1/sandboxes/sbx_x`)).status).toBe(404);
    expect((await fetch(`${base}/takeover/tk_${'A'.repeat(30)}?token=x`)).status).toBe(404);
  });

  it('answers 404, not 410, for the ids of another runner that still runs on the state dir', async () => {
    const other = await runnerOn(currentInstanceId());
    const created = await fetch(`${other.server.url}/v1/sandboxes`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: 'grexal/agent', command: ['agent'] }),
    });
    const { id } = (await created.json()) as { id: string };
    const second = await runnerOn(`${hostname()}/999999999-2`);
    const res = await fetch(`${second.server.url}/v1/sandboxes/${id}`);
    expect(res.status).toBe(404);
  });
});
