/**
 * Warm pools on the real engine: entries hold nothing of a run before their claim (inspect, host
 * directory, processes), every run gets its own container and directory, a mismatch is cold, the
 * pool refills, replaces idle entries, retires a rebuilt image's entries gradually, drains on
 * SIGTERM, and a SIGKILLed runner's entries are reaped like every leftover.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiServer, serve } from '../runner/api/index.ts';
import { Runner } from '../runner/index.ts';
import {
  type CliRun,
  containersOfPid,
  docker,
  eventually,
  newStateDir,
  removeStateDir,
  sandboxContainers,
  sandboxDirs,
  startCli,
} from './helpers.ts';

const canary = (name: string) => `canary-${name}-${randomBytes(6).toString('hex')}`;
let stateDir: string;
let runner: Runner;
let server: ApiServer;

beforeAll(async () => {
  stateDir = await newStateDir();
  runner = await Runner.start({ stateDir, poolCheckIntervalMs: 250 });
  server = await serve({ runner, port: 0 });
});
afterAll(async () => {
  await server?.close();
  await removeStateDir(stateDir);
});

async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
const pool = async (name: string) => (await api('GET', `/v1/pools/${name}`)).body;
/** The whole event stream of a sandbox (it ends after `exit`). */
const events = async (id: string) => (await fetch(`${server.url}/v1/sandboxes/${id}/events`)).text();

/** The runner's entries of a pool's image, by sandbox id: container id and host directory. */
async function entriesOf(image: string) {
  const containers = (await sandboxContainers()).filter(
    (c) =>
      c.Labels['grexal.runner'] === runner.runtime.instanceId && c.Image === image && c.State === 'running',
  );
  const dirs = await sandboxDirs(stateDir);
  return containers.map((c) => {
    const id = c.Labels['grexal.sandbox']!;
    return { id, containerId: c.Id, dir: dirs.find((d) => d.endsWith(id)) };
  });
}

/** Every byte an observer on the host could read of an entry before its claim. */
async function observable(entry: { containerId: string; dir?: string }): Promise<string> {
  const container = docker.getContainer(entry.containerId);
  let text = JSON.stringify(await container.inspect());
  const top = await container.top({ ps_args: '-o pid' });
  for (const [pid] of top.Processes ?? []) {
    for (const file of ['cmdline', 'environ'])
      text += await readFile(`/proc/${pid}/${file}`, 'latin1').catch(() => '');
  }
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      text += path;
      const info = await stat(path).catch(() => undefined);
      if (info?.isDirectory()) await walk(path);
      else if (info?.isFile()) text += await readFile(path, 'latin1').catch(() => '');
    }
  };
  if (entry.dir) await walk(entry.dir);
  return text;
}

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

/** An image of this test's own, so that rebuilding it never touches the shared ones. */
async function buildTestImage(tag: string, label: string): Promise<string> {
  const context = pack();
  context.entry({ name: 'Dockerfile' }, `FROM grexal/agent\nLABEL grexal.test-stale=${label}\n`);
  context.finalize();
  const stream = await docker.buildImage(context as never, { t: tag });
  await new Promise((resolve, reject) =>
    docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(undefined))),
  );
  const id = (await docker.getImage(tag).inspect()).Id;
  builtImages.push(id);
  return id;
}
const builtImages: string[] = [];

describe('an image rebuilt under a pool', () => {
  const tag = `grexal-test/pool-stale:${randomBytes(4).toString('hex')}`;
  afterAll(async () => {
    // Both builds: the first one is untagged by the second, not gone.
    for (const id of builtImages.reverse())
      await docker
        .getImage(id)
        .remove({ force: true })
        .catch(() => {});
  });

  it('retires the old entries one at a time, never claiming them', async () => {
    const oldId = await buildTestImage(tag, 'one');
    await api('PUT', '/v1/pools/stale', { image: tag, size: 2 });
    await eventually(async () => (await pool('stale')).ready === 2, 'the pool filled', 600);
    const newId = await buildTestImage(tag, 'two');
    expect(newId).not.toBe(oldId);
    let fewest = 2;
    await eventually(
      async () => {
        const status = await pool('stale');
        fewest = Math.min(fewest, status.ready + status.stale);
        const ids = (await sandboxContainers())
          .filter((c) => c.Labels['grexal.runner'] === runner.runtime.instanceId && c.State === 'running')
          .map((c) => c.ImageID);
        return (
          status.ready === 2 && status.stale === 0 && ids.length === 2 && ids.every((id) => id === newId)
        );
      },
      'the entries on the new image',
      1_200,
    );
    // Gradual: never more than one entry missing at a time.
    expect(fewest).toBeGreaterThanOrEqual(1);
    const run = await api('POST', '/v1/sandboxes', { image: tag, command: ['true'] });
    expect(run.body.warm).toBe(true);
    const [container] = await sandboxContainers(run.body.id);
    expect(container?.ImageID).toBe(newId);
    await events(run.body.id);
    expect((await api('DELETE', '/v1/pools/stale')).status).toBe(204);
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

describe('grexal serve --pool', () => {
  const running = async (pid: number | undefined) =>
    (await containersOfPid(pid)).filter((c) => c.State === 'running').length;
  const servePoolOfTwo = (dir: string) =>
    startCli(['serve', '--port', '0', '--pool', 'sh=grexal/agent,size=2'], {
      GREXAL_STATE_DIR: dir,
      GREXAL_LOG_LEVEL: 'warn',
    });
  const bothEntriesRunning = async (cli: CliRun) => {
    await cli.waitFor(/serving on/, 'stderr');
    await eventually(async () => (await running(cli.child.pid)) === 2, 'two entries running', 600);
  };

  it('drains its pool on SIGTERM', async () => {
    const dir = await newStateDir();
    const cli = servePoolOfTwo(dir);
    try {
      await bothEntriesRunning(cli);
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(await containersOfPid(cli.child.pid)).toHaveLength(0);
      expect(await sandboxDirs(dir)).toEqual([]);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await removeStateDir(dir);
    }
  });

  it("refuses a bad --pool before anything starts, and a SIGKILLed runner's entries are reaped", async () => {
    const bad = startCli(['serve', '--port', '0', '--pool', 'sh=grexal/agent,size=99'], {
      GREXAL_LOG_LEVEL: 'warn',
    });
    expect(await bad.exited).not.toBe(0);
    expect(bad.stderr).toContain('E_POOL_SIZE_INVALID');

    const dir = await newStateDir();
    const cli = servePoolOfTwo(dir);
    try {
      await bothEntriesRunning(cli);
      cli.child.kill('SIGKILL');
      await cli.exited;
      expect((await containersOfPid(cli.child.pid)).length).toBeGreaterThan(0);
      const next = await Runner.start({ stateDir: dir });
      try {
        await next.reaped;
        expect(await containersOfPid(cli.child.pid)).toHaveLength(0);
      } finally {
        await next.close();
      }
      expect(await sandboxDirs(dir)).toEqual([]);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await removeStateDir(dir);
    }
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
