/**
 * Engine faults against a real dockerd of the test's own (test/private-engine.ts): killed mid-run
 * and restarted, under `grexal run` and under `grexal serve`; stopped cleanly; and OOM kills, of
 * the agent and of a child while the agent exits 1. The shared engine is never stopped or killed.
 */
import { hostname } from 'node:os';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RunnerClient } from '../runner/index.ts';
import { DockerRuntime } from '../runner/runtime/index.ts';
import { Runner } from '../runner/sandbox/index.ts';
import { type CliRun, newStateDir, removeStateDir, sandboxDirs, startCli as spawnCli } from './helpers.ts';
import { type PrivateEngine, startPrivateEngine } from './private-engine.ts';

let engine: PrivateEngine;
let stateDir: string;
let env: Record<string, string>;

beforeAll(async () => {
  engine = await startPrivateEngine();
  stateDir = await newStateDir();
  env = { DOCKER_HOST: engine.endpoint, GREXAL_STATE_DIR: stateDir, GREXAL_LOG_LEVEL: 'warn' };
});
afterAll(async () => {
  await engine?.dispose();
  await removeStateDir(stateDir);
});
// A test that killed the engine leaves it down; the next one gets it back.
beforeEach(async () => {
  await engine.ensureUp();
});

/** Every CLI a test starts; one still running when its test ends (a failure) is killed. */
const clis: CliRun[] = [];
function startCli(args: string[], cliEnv: Record<string, string>): CliRun {
  const run = spawnCli(args, cliEnv);
  clis.push(run);
  return run;
}
afterEach(() => {
  for (const run of clis.splice(0)) {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      console.log(
        `killing pid ${run.child.pid} (grexal ${run.child.spawnargs.slice(2).join(' ')}), left running`,
      );
      run.child.kill('SIGKILL');
    }
  }
});

/** A bounded wait that fails the test when it is exceeded (never a time asserted). */
async function within<T>(promise: Promise<T>, what: string, ms = 60_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not within ${ms / 1000} s: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, limit]);
  } finally {
    clearTimeout(timer);
  }
}

async function until(check: () => Promise<boolean>, what: string, attempts = 240): Promise<void> {
  for (let i = 0; i < attempts; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`never happened: ${what}`);
}

/** The private engine's sandbox containers, of one runner process or of one sandbox. */
async function containers(filter: { pid?: number; sandboxId?: string }) {
  const all = await engine.docker.listContainers({ all: true, filters: { label: ['grexal.sandbox'] } });
  return all.filter(
    (c) =>
      (filter.pid === undefined || c.Labels['grexal.runner']?.startsWith(`${hostname()}/${filter.pid}-`)) &&
      (filter.sandboxId === undefined || c.Labels['grexal.sandbox'] === filter.sandboxId),
  );
}

/** `grexal serve` on the private engine, listening, and a client of it. */
async function startServe(): Promise<{ serve: CliRun; client: RunnerClient }> {
  const serve = startCli(['serve', '--port', '0'], env);
  const [, url] = await within(serve.waitFor(/serving on (http:\/\/\S+)/), 'grexal serve listening');
  return { serve, client: new RunnerClient({ baseUrl: url ?? '', timeoutMs: 30_000 }) };
}

/** `grexal serve` with one sandbox sleeping in it, running, its container there. */
async function servedSleeper() {
  const { serve, client } = await startServe();
  const { id } = await client.create({ image: 'grexal/agent', command: ['sh', '-c', 'sleep 300'] });
  await until(async () => (await client.get(id)).state === 'running', 'the sandbox running');
  let containerId = '';
  await until(async () => {
    const found = await containers({ sandboxId: id });
    containerId = found[0]?.Id ?? '';
    return found.length === 1;
  }, 'its container');
  return { serve, client, id, containerId };
}

/** One SIGTERM stops it cleanly, and nothing is left in the state dir. */
async function stopServe(serve: CliRun): Promise<void> {
  serve.child.kill('SIGTERM');
  expect(await within(serve.exited, 'grexal serve stopping on one SIGTERM', 30_000)).toBe(0);
  expect(await sandboxDirs(stateDir)).toEqual([]);
}

function longRun(): CliRun {
  return startCli(['run', '--', 'sh', '-c', 'echo started; sleep 300'], env);
}

describe('dockerd killed mid-run', () => {
  it('grexal run ends naming the engine and the fix, leaves no host directory; the next runner reaps', async () => {
    const run = longRun();
    await within(run.waitFor(/started\n/, 'stdout'), 'the agent running');
    const killedAt = Date.now();
    await engine.kill('SIGKILL');
    const code = await within(run.exited, 'grexal run exiting after the engine died');
    console.log(`grexal run: dockerd SIGKILL → exit in ${Date.now() - killedAt} ms`);
    expect(code).toBe(1);
    expect(run.stderr).toContain(`The Docker engine at ${engine.endpoint} went away`);
    expect(run.stderr).toContain('grexal doctor --fix');
    expect(await sandboxDirs(stateDir)).toEqual([]);

    // Its container outlived the engine's death (the shim kept it); the next runner removes it.
    await engine.ensureUp();
    expect(await containers({ pid: run.child.pid })).toHaveLength(1);
    const next = startCli(['run', '--', 'true'], env);
    expect(await within(next.exited, 'the next grexal run')).toBe(0);
    await until(async () => (await containers({ pid: run.child.pid })).length === 0, 'the leftover reaped');
  });

  it('grexal serve: the sandbox fails as engine_lost, DELETE answers, reconciles on restart, stops on SIGTERM', async () => {
    const { serve, client, id } = await servedSleeper();

    const killedAt = Date.now();
    await engine.kill('SIGKILL');
    await until(async () => (await client.get(id)).state === 'failed', 'the sandbox failed');
    const view = await client.get(id);
    expect(view).toMatchObject({
      state: 'failed',
      exitCode: -1,
      exitReason: 'engine_lost',
      oomKilled: false,
    });
    expect(view.exitMessage).toContain(engine.endpoint);
    const events = [];
    for await (const event of client.events(id)) events.push(event);
    const error = events.find((e) => e.type === 'error');
    const exit = events.at(-1);
    expect(error).toMatchObject({ type: 'error', code: 'E_ENGINE_LOST' });
    expect(exit).toMatchObject({ type: 'exit', reason: 'engine_lost' });
    if (exit?.type === 'exit')
      console.log(`grexal serve: dockerd SIGKILL → engine_lost event in ${exit.at - killedAt} ms`);
    await within(client.delete(id), 'DELETE answering while the engine is down', 15_000);
    expect(await sandboxDirs(stateDir)).toEqual([]);

    // Back up: the runner, still serving, removes the container it could not remove before.
    await engine.ensureUp();
    await until(
      async () => (await containers({ sandboxId: id })).length === 0,
      'the container reconciled away',
    );
    // And it serves again on the engine that came back.
    const again = await client.create({ image: 'grexal/agent', command: ['sh', '-c', 'exit 7'] });
    await until(async () => (await client.get(again.id)).state === 'exited', 'a new sandbox ending');
    expect(await client.get(again.id)).toMatchObject({ exitCode: 7, exitReason: 'exited' });

    serve.child.kill('SIGTERM');
    expect(await within(serve.exited, 'grexal serve stopping on one SIGTERM', 30_000)).toBe(0);
    expect(await containers({ pid: serve.child.pid })).toEqual([]);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });

  it('grexal serve: DELETE and shutdown answer with the engine still down', async () => {
    const { serve, client } = await startServe();
    const { id } = await client.create({ image: 'grexal/agent', command: ['sh', '-c', 'sleep 300'] });
    await until(async () => (await client.get(id)).state === 'running', 'the sandbox running');
    await engine.kill('SIGKILL');
    await within(client.delete(id), 'DELETE answering', 15_000);
    expect((await client.get(id)).exitReason).toBe('engine_lost');
    serve.child.kill('SIGTERM');
    expect(await within(serve.exited, 'grexal serve stopping on one SIGTERM', 30_000)).toBe(0);
    expect(serve.stderr).not.toContain('interrupt once more');
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });
});

describe('dockerd hung (SIGSTOP): its sockets stay open, nothing answers', () => {
  afterEach(() => engine.freeze(false));

  it('grexal serve: the liveness probe ends the sandbox as engine_lost; resumed, the runner reconciles', async () => {
    const { serve, client } = await startServe();
    const { id } = await client.create({ image: 'grexal/agent', command: ['sh', '-c', 'sleep 300'] });
    const other = await client.create({ image: 'grexal/agent', command: ['sh', '-c', 'sleep 300'] });
    for (const sandbox of [id, other.id]) {
      await until(async () => (await client.get(sandbox)).state === 'running', 'the sandboxes running');
      await until(async () => (await containers({ sandboxId: sandbox })).length === 1, 'their containers');
    }

    const frozenAt = Date.now();
    engine.freeze(true);
    // A DELETE sent before the loss is known: the engine never answers its stop, yet it answers.
    const deleting = within(client.delete(other.id), 'DELETE answering on a hung engine', 30_000);
    await until(async () => (await client.get(id)).state === 'failed', 'the sandbox failed');
    const view = await client.get(id);
    expect(view).toMatchObject({ exitReason: 'engine_lost' });
    expect(view.exitMessage).toMatch(/no answer/);
    console.log(`grexal serve: dockerd SIGSTOP → failed/engine_lost seen after ${Date.now() - frozenAt} ms`);
    await within(client.delete(id), 'DELETE answering while the engine hangs', 15_000);
    await deleting;
    expect((await client.get(other.id)).exitReason).toBe('engine_lost');
    expect(await sandboxDirs(stateDir)).toEqual([]);

    // The containers ran on under the frozen daemon; once it answers, the runner removes them.
    engine.freeze(false);
    await until(
      async () => (await containers({ pid: serve.child.pid })).length === 0,
      'the containers reconciled away',
    );
    serve.child.kill('SIGTERM');
    expect(await within(serve.exited, 'grexal serve stopping on one SIGTERM', 30_000)).toBe(0);
  });
});

describe('dockerd stopped cleanly', () => {
  it('grexal serve records engine_stopped, keeping the exit code the engine reported', async () => {
    const { serve, client, id } = await servedSleeper();
    await engine.kill('SIGTERM');
    await until(async () => (await client.get(id)).state === 'failed', 'the sandbox failed');
    const view = await client.get(id);
    expect(view).toMatchObject({ exitReason: 'engine_stopped', oomKilled: false });
    // Docker's own stop: SIGTERM (143), or SIGKILL (137) after its grace period.
    expect([137, 143]).toContain(view.exitCode);
    expect(view.exitMessage).toContain(engine.endpoint);
    await stopServe(serve);
  });

  it("is reported as engine_stopped, not as the agent's exit 143", async () => {
    const run = longRun();
    await within(run.waitFor(/started\n/, 'stdout'), 'the agent running');
    await engine.kill('SIGTERM');
    const code = await within(run.exited, 'grexal run exiting after the engine stopped');
    expect(code).toBe(1);
    expect(run.stderr).toContain(`The Docker engine at ${engine.endpoint} shut down while the sandbox ran`);
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });
});

describe("a container stopped from outside the runner (an operator's docker stop or kill)", () => {
  it("grexal serve records killed with the remedy, not the agent's exit 143; the engine stays", async () => {
    const { serve, client, id, containerId } = await servedSleeper();
    await engine.docker.getContainer(containerId).stop({ t: 1 });
    await until(async () => (await client.get(id)).state === 'failed', 'the sandbox failed');
    const view = await client.get(id);
    expect(view).toMatchObject({ exitReason: 'killed', oomKilled: false });
    expect([137, 143]).toContain(view.exitCode);
    expect(view.exitMessage).toContain('docker stop');
    await stopServe(serve);
  });

  it('grexal run exits 1 saying so; an agent that kills itself is still its own exit', async () => {
    const run = longRun();
    await within(run.waitFor(/started\n/, 'stdout'), 'the agent running');
    const [container] = await containers({ pid: run.child.pid });
    await engine.docker.getContainer(container?.Id ?? '').kill({ signal: 'SIGKILL' });
    expect(await within(run.exited, 'grexal run exiting after docker kill')).toBe(1);
    expect(run.stderr).toContain('stopped or killed from outside the runner');
    const own = startCli(['run', '--', 'sh', '-c', 'kill -TERM $$'], env);
    expect(await within(own.exited, 'grexal run of an agent killing itself')).toBe(143);
  });
});

describe('out of memory, from the cgroup record', () => {
  let runner: Runner;
  beforeAll(async () => {
    await engine.ensureUp();
    runner = await Runner.start({ runtime: await runtimeOf(engine), stateDir });
  });
  afterAll(async () => {
    await runner?.close();
  });

  const hog = 'python3 -c "b = bytearray(512 * 2**20)"';

  it('names the agent itself killed for memory (137)', async () => {
    const sandbox = await runner.create({
      image: 'grexal/agent',
      command: ['sh', '-c', `exec ${hog}`],
      limits: { memoryBytes: 64 * 2 ** 20 },
    });
    await sandbox.start();
    expect(await within(sandbox.exited, 'the sandbox ending')).toEqual({
      exitCode: 137,
      reason: 'oom',
      oomKilled: true,
    });
  });

  it('names a child killed for memory while the agent exits 1', async () => {
    const sandbox = await runner.create({
      image: 'grexal/agent',
      command: ['sh', '-c', `${hog}; exit 1`],
      limits: { memoryBytes: 64 * 2 ** 20 },
    });
    await sandbox.start();
    expect(await within(sandbox.exited, 'the sandbox ending')).toEqual({
      exitCode: 1,
      reason: 'oom',
      oomKilled: true,
    });
  });

  it('grexal run says so whatever the exit code', async () => {
    const run = startCli(['run', '--memory', '64m', '--', 'sh', '-c', `${hog}; exit 1`], env);
    expect(await within(run.exited, 'grexal run')).toBe(1);
    expect(run.stderr).toContain('killed for memory');
    expect(run.stderr).toContain('raise --memory');
  });

  it('does not name one when no process was killed for memory', async () => {
    const sandbox = await runner.create({ image: 'grexal/agent', command: ['sh', '-c', 'exit 137'] });
    await sandbox.start();
    expect(await within(sandbox.exited, 'the sandbox ending')).toEqual({
      exitCode: 137,
      reason: 'exited',
      oomKilled: false,
    });
  });
});

async function runtimeOf(e: PrivateEngine): Promise<DockerRuntime> {
  const { default: Dockerode } = await import('dockerode');
  return new DockerRuntime(new Dockerode({ socketPath: e.socket }), e.endpoint);
}
