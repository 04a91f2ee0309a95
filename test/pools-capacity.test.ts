/**
 * Warm pools on the real engine, their bounds: entries counted against `--max-sandboxes` and given
 * up to cold runs, and a pool whose entries keep failing backs off and says so. Setup:
 * test/pools-fixture.ts.
 */
import { describe, expect, it } from 'vitest';
import { serve } from '../runner/api/index.ts';
import { Runner } from '../runner/index.ts';
import { eventually, newStateDir, removeStateDir, sandboxContainers } from './helpers.ts';
import { api, events, pool, server, usePoolsFixture } from './pools-fixture.ts';

usePoolsFixture();

describe('a pool under --max-sandboxes', () => {
  it('counts its entries against the cap, gives them up to cold runs, and refills as runs end', async () => {
    const dir = await newStateDir();
    const capped = await Runner.start({ stateDir: dir, poolCheckIntervalMs: 250 });
    const api3 = await serve({ runner: capped, port: 0, maxSandboxes: 3 });
    const call = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${api3.url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    };
    const status = async () => (await call('GET', '/v1/pools/p')).body;
    const held = async () =>
      (await sandboxContainers()).filter(
        (c) => c.Labels['grexal.runner'] === capped.runtime.instanceId && c.State === 'running',
      ).length;
    try {
      // A pool of 5 under a cap of 3 holds 3, and says why it holds no more.
      expect((await call('PUT', '/v1/pools/p', { image: 'grexal/agent', size: 5 })).status).toBe(201);
      await eventually(async () => (await status()).ready === 3, 'three entries', 600);
      const full = await status();
      expect(full).toMatchObject({ ready: 3, starting: 0, limitedBy: 'max-sandboxes' });
      expect(await held()).toBe(3);
      // Cold runs (the pool they name does not exist) take the entries' places, none is refused.
      const cold = [];
      for (let i = 0; i < 3; i++) {
        const run = await call('POST', '/v1/sandboxes', {
          image: 'grexal/agent',
          command: ['sleep', '60'],
          pool: 'nonesuch',
        });
        expect(run.status).toBe(201);
        expect(run.body.warm).toBe(false);
        cold.push(run.body.id as string);
      }
      await eventually(
        async () => (await status()).ready === 0 && (await held()) === 3,
        'entries gave way',
        600,
      );
      // Three live runs: the cap is reached, whatever the pool wants.
      const refused = await call('POST', '/v1/sandboxes', { image: 'grexal/agent', command: ['true'] });
      expect(refused.status).toBe(429);
      expect(refused.body.error.code).toBe('E_TOO_MANY_SANDBOXES');
      // A run ends: the pool refills into its place, and no further.
      expect((await call('DELETE', `/v1/sandboxes/${cold[0]}`)).status).toBe(204);
      await eventually(async () => (await status()).ready === 1, 'the pool refilled one', 600);
      expect(await held()).toBe(3);
      const warm = await call('POST', '/v1/sandboxes', { image: 'grexal/agent', command: ['true'] });
      expect(warm.status).toBe(201);
      expect(warm.body.warm).toBe(true);
    } finally {
      await api3.close();
      await removeStateDir(dir);
    }
  });
});

describe('a pool whose entries keep failing', () => {
  it('backs off, reports it, and counts it on /metrics, without a tight loop', async () => {
    // grexal/base has no supervisor: its entries end before they ever ask for a bootstrap.
    expect((await api('PUT', '/v1/pools/broken', { image: 'grexal/base', size: 2 })).status).toBe(201);
    await eventually(
      async () => (await pool('broken')).failing?.consecutiveFailures >= 2,
      'failures reported',
      600,
    );
    const status = await pool('broken');
    // Its container exits at once: the wiring of its link or the wait for its bootstrap fails.
    expect(status.ready).toBe(0);
    expect(status.failing.code).toMatch(/^E_[A-Z_]+$/);
    expect(status.failing.message.length).toBeGreaterThan(0);
    // One probe at a time, 1 s then 2 s apart: a handful of attempts, not dozens.
    expect(status.failures).toBeLessThanOrEqual(4);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/grexal_pool_refill_failures_total\{pool="broken",code="E_[A-Z_]+"\} [1-9]/);
    // A request matching the failing pool is still served, cold.
    const run = await api('POST', '/v1/sandboxes', { image: 'grexal/base', command: ['true'] });
    expect(run.body.warm).toBe(false);
    await events(run.body.id);
    expect((await api('DELETE', '/v1/pools/broken')).status).toBe(204);
  });
});
