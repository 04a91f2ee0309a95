/**
 * Warm pools on the real engine, the claim: entries hold nothing of a run before it (inspect, host
 * directory, processes), every run gets its own container and directory, a mismatch is cold, the
 * pool refills and replaces idle entries; a desktop pool's entries have their browser up. Setup:
 * test/pools-fixture.ts.
 */
import { describe, expect, it } from 'vitest';
import { eventually, sandboxContainers, sandboxDirs } from './helpers.ts';
import {
  api,
  canary,
  cpuWeightOf,
  entriesOf,
  events,
  observable,
  pool,
  server,
  stateDir,
  usePoolsFixture,
} from './pools-fixture.ts';

usePoolsFixture();

describe('a warm pool of grexal/agent', () => {
  it('binds everything of a run at the claim, serves each run from its own entry, and refills', async () => {
    const secret = canary('secret');
    const runEnv = canary('env');
    const runArg = canary('arg');
    expect((await api('PUT', '/v1/pools/sh', { image: 'grexal/agent', size: 2 })).status).toBe(201);
    await eventually(async () => (await pool('sh')).ready === 2, 'the pool filled', 600);
    const before = await entriesOf('grexal/agent');
    expect(before).toHaveLength(2);
    for (const entry of before) {
      expect(entry.dir).toBeDefined();
      const seen = await observable(entry);
      // The observation itself is real: it reads the supervisor's process and the host directory.
      expect(seen).toContain('ctx.sock');
      expect(seen).toContain('/opt/grexal');
      for (const value of [secret, runEnv, runArg]) expect(seen).not.toContain(value);
    }
    // Idle longer than the run's own deadline: the deadline counts from the claim.
    await new Promise((resolve) => setTimeout(resolve, 2_500));

    const run = (arg: string, extra: object = {}) =>
      api('POST', '/v1/sandboxes', {
        image: 'grexal/agent',
        // The name lookup goes to the sandbox's own resolver in the runner, which answers listed
        // names only: the claim's policy is in force if it refuses this one.
        command: [
          'sh',
          '-c',
          `echo "key=$OPENAI_API_KEY env=$RUN_ENV arg=${arg}"; getent hosts unlisted.example.test || true`,
        ],
        env: { RUN_ENV: runEnv },
        manifest: {
          connections: [
            {
              id: 'openai',
              mode: 'secret_input',
              fields: [{ key: 'api_key' }],
              env: { OPENAI_API_KEY: 'api_key' },
            },
          ],
        },
        credentials: { openai: { fields: { api_key: secret } } },
        network: { mode: 'allow', allow: ['api.example.test:443'] },
        ...extra,
      });
    const first = await run(runArg);
    expect(first.status).toBe(201);
    expect(first.body.warm).toBe(true);
    const firstEntry = before.find((e) => e.id === first.body.id);
    expect(firstEntry).toBeDefined();
    const stream = await events(first.body.id);
    expect(stream).toContain('"type":"claimed","warm":true');
    expect(stream).toContain(`env=${runEnv} arg=${runArg}`);
    expect(stream).toMatch(/key=\S/);
    expect(stream).not.toContain(secret);
    expect(stream).toMatch(
      /"type":"network","kind":"dns","host":"unlisted\.example\.test"[^\n]*"decision":"denied"/,
    );
    const view = (await api('GET', `/v1/sandboxes/${first.body.id}`)).body;
    expect(view).toMatchObject({
      warm: true,
      exitCode: 0,
      exitReason: 'exited',
      network: { mode: 'allow', allow: ['api.example.test:443'] },
    });
    // One run, then destroyed: its container and host directory are gone.
    await eventually(async () => (await sandboxContainers(first.body.id)).length === 0, 'the entry removed');
    expect(await sandboxDirs(stateDir)).not.toContain(firstEntry!.dir);

    // The deadline bound at the claim, not at the entry's start.
    const late = await api('POST', '/v1/sandboxes', {
      image: 'grexal/agent',
      command: ['sleep', '30'],
      limits: { timeoutMs: 2_000 },
    });
    expect(late.body.warm).toBe(true);
    await events(late.body.id);
    expect((await api('GET', `/v1/sandboxes/${late.body.id}`)).body.exitReason).toBe('timeout');

    // The pool refills with new entries; the next run shares nothing with the first.
    await eventually(async () => (await pool('sh')).ready === 2, 'the pool refilled', 600);
    const second = await run(canary('arg2'));
    expect(second.body.warm).toBe(true);
    expect(second.body.id).not.toBe(first.body.id);
    const secondEntry = (await entriesOf('grexal/agent')).find((e) => e.id === second.body.id);
    await events(second.body.id);
    expect(secondEntry?.containerId).not.toBe(firstEntry!.containerId);
    expect(secondEntry?.dir).not.toBe(firstEntry!.dir);

    // Other limits: a cold create, never an error.
    const cold = await run(canary('arg3'), { limits: { memoryBytes: 256 * 2 ** 20 } });
    expect(cold.status).toBe(201);
    expect(cold.body.warm).toBe(false);
    expect(await events(cold.body.id)).toContain('"type":"claimed","warm":false');
    // `none` promises no interface but lo, and an entry has a link: served cold.
    const none = await run(canary('arg4'), { network: 'none' });
    expect(none.body.warm).toBe(false);
    await events(none.body.id);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('grexal_pool_claims_total{warm="true"} 3');
    expect(metrics).toContain('grexal_pool_claims_total{warm="false"} 2');
    expect((await api('DELETE', '/v1/pools/sh')).status).toBe(204);
    expect(await entriesOf('grexal/agent')).toHaveLength(0);
  });

  it('replaces an entry idle past maxIdle', async () => {
    await api('PUT', '/v1/pools/idle', { image: 'grexal/agent', size: 1, maxIdleMs: 1_500 });
    await eventually(async () => (await pool('idle')).ready === 1, 'the pool filled', 600);
    const [first] = await entriesOf('grexal/agent');
    await eventually(
      async () => {
        const now = await entriesOf('grexal/agent');
        return now.length === 1 && now[0]!.id !== first!.id;
      },
      'the idle entry replaced',
      600,
    );
    await eventually(async () => (await sandboxContainers(first!.id)).length === 0, 'the idle entry removed');
    expect((await api('DELETE', '/v1/pools/idle')).status).toBe(204);
  });
});

describe('a warm pool of desktops', () => {
  it('keeps each entry with its browser container up, and a claimed run reaches its browser at once', async () => {
    const body = { image: 'grexal/desktop', desktop: true, size: 1 };
    expect((await api('PUT', '/v1/pools/desk', body)).status).toBe(201);
    await eventually(async () => (await pool('desk')).ready === 1, 'the desktop pool filled', 900);
    // Before any claim: the agent's container and the browser's, both running, one sandbox.
    const [agent] = (await entriesOf('grexal/desktop')).filter((e) => e.dir);
    const entry = (await sandboxContainers(agent?.id)).filter((c) => c.State === 'running');
    expect(entry.map((c) => c.Labels['grexal.role']).sort()).toEqual(['agent', 'browser']);
    // Warmed at a low CPU weight, ready at a cold sandbox's (the kernel's default, which a container
    // without CpuShares has): the claimed run below must not start at less.
    for (const container of entry) {
      const { file, value } = await cpuWeightOf(container.Id);
      expect(value, file).toBe(file.endsWith('cpu.weight') ? 100 : 1024);
    }

    const probe = "fetch(process.env.GREXAL_CDP_URL + '/json/version').then((r) => r.json())";
    const claimed = await api('POST', '/v1/sandboxes', {
      image: 'grexal/desktop',
      desktop: true,
      command: ['node', '-e', `${probe}.then((v) => console.log('browser: ' + v.Browser))`],
    });
    expect(claimed.status).toBe(201);
    expect(claimed.body).toMatchObject({ warm: true, id: agent?.id });
    expect(await events(claimed.body.id)).toMatch(/browser: (Headless)?Chrome\/\d+/);
    expect((await api('DELETE', '/v1/pools/desk')).status).toBe(204);
    await eventually(async () => (await sandboxContainers(claimed.body.id)).length === 0, 'the run removed');
  });
});
