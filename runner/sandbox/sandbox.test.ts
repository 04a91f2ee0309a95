/** The lifecycle against a fake runtime whose "container" speaks to ctx.sock like the supervisor. */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import { prepareInjection } from '../inject/index.ts';
import type { ContainerHandle, ContainerRuntime, ContainerSpec, ExitStatus } from '../runtime/index.ts';
import { RUNNER_GRACE_MS } from './bootstrap.ts';
import { CtxLink } from './fake-supervisor-link.ts';
import { resolveSandboxOptions } from './options.ts';
import { Sandbox, type SandboxDeps } from './sandbox.ts';
import { StartsFirst } from './starts-first.ts';

type Behaviour = (
  link: CtxLink,
  out: { stdout: PassThrough; stderr: PassThrough },
  ctxPath: string,
) => Promise<number | ExitStatus>;

class FakeContainer implements ContainerHandle {
  readonly id = 'c1';
  removed = false;
  private readonly out = { stdout: new PassThrough(), stderr: new PassThrough() };
  private exit!: Promise<ExitStatus>;
  private stopped?: () => void;
  constructor(
    readonly sandboxId: string,
    private readonly spec: ContainerSpec,
    private readonly behaviour: Behaviour,
  ) {}
  async attach() {
    return this.out;
  }
  async pid() {
    return 0;
  }
  async start() {
    const stop = new Promise<number | ExitStatus>((resolve) => {
      this.stopped = () => resolve(143);
    });
    this.exit = (async () => {
      const ctxPath = join(this.spec.hostRunDir, 'ctx.sock');
      const link = await CtxLink.open(ctxPath);
      const code = await Promise.race([this.behaviour(link, this.out, ctxPath), stop]);
      link.close();
      this.out.stdout.end();
      this.out.stderr.end();
      return typeof code === 'number' ? { exitCode: code, oomKilled: false } : code;
    })();
  }
  wait() {
    return this.exit;
  }
  async stop() {
    this.stopped?.();
  }
  paused = false;
  async pause(): Promise<void> {
    this.paused = true;
  }
  async unpause(): Promise<void> {
    this.paused = false;
  }
  /** Every CpuShares update the container got (its create's weight is spec.cpuShares). */
  cpuShares: number[] = [];
  async setCpuShares(shares: number): Promise<void> {
    this.cpuShares.push(shares);
  }
  async remove() {
    this.removed = true;
  }
  async [Symbol.asyncDispose]() {
    await this.remove();
  }
}

class FakeRuntime implements ContainerRuntime {
  readonly instanceId = 'test-host/1-1';
  containers: FakeContainer[] = [];
  failCreate = false;
  constructor(private readonly behaviour: Behaviour) {}
  info(): never {
    throw new Error('unused');
  }
  async image() {
    return undefined;
  }
  buildImage(): never {
    throw new Error('unused');
  }
  importImage(): never {
    throw new Error('unused');
  }
  async createContainer(spec: ContainerSpec) {
    if (this.failCreate)
      throw new GrexalError('E_IMAGE_NOT_FOUND', `Image '${spec.image}' is not in the engine.`);
    const container = new FakeContainer(spec.sandboxId, spec, this.behaviour);
    this.containers.push(container);
    return container;
  }
  async reapLeftovers() {
    return [];
  }
  onEngineChange() {
    return () => {};
  }
}

describe('Sandbox', () => {
  let stateDir: string;
  const logger = pino({ level: 'silent' });

  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'sandbox-test-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  const leftovers = async () =>
    (await readdir(stateDir, { recursive: true })).filter((e) => e.includes('sbx_'));

  function sandboxWith(
    behaviour: Behaviour,
    options: Record<string, unknown> = {},
    deps: Partial<SandboxDeps> & { id?: string } = {},
  ) {
    const runtime = new FakeRuntime(behaviour);
    const { id = 'sbx_test', ...rest } = deps;
    const sandbox = new Sandbox(id, resolveSandboxOptions({ image: 'grexal/agent', ...options }), {
      runtime,
      stateDir,
      logger,
      ...rest,
    });
    return { runtime, sandbox };
  }

  it('bootstraps once, relays output in order, reports the exit and cleans up', async () => {
    const { runtime, sandbox } = sandboxWith(
      async (link, out) => {
        const boot = (await link.call('bootstrap', { argv: [] })) as {
          command: string[];
          env: Record<string, string>;
        };
        out.stdout.write(`${boot.command.join(' ')} ${boot.env['GREXAL_SANDBOX_ID']}\n`);
        await expect(link.call('bootstrap', { argv: [] })).rejects.toThrow(/invalid_request/);
        return 3;
      },
      { command: ['echo', 'hi'] },
    );
    const seen: string[] = [];
    sandbox.onEvent((e) =>
      seen.push(e.type === 'log' ? `log:${e.text}` : e.type === 'state' ? e.state : e.type),
    );
    await sandbox.start();
    expect(await sandbox.exited).toEqual({ exitCode: 3, reason: 'exited', oomKilled: false });
    expect(seen).toEqual(['claimed', 'running', 'log:echo hi sbx_test\n', 'exit', 'exited']);
    expect(runtime.containers[0]?.removed).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  it("holds an ended run's container while another run starts, at its supervisor's ask only", async () => {
    const startsFirst = new StartsFirst({ maxHoldMs: 10_000 });
    const order: string[] = [];
    let letOtherPrint!: () => void;
    const otherMayPrint = new Promise<void>((resolve) => {
      letOtherPrint = resolve;
    });
    const other = sandboxWith(
      async (link, out) => {
        await link.call('bootstrap', { argv: [] });
        await otherMayPrint;
        order.push('other printed');
        out.stdout.write('first line\n');
        return 0;
      },
      { command: ['true'] },
      { id: 'sbx_other', startsFirst },
    );
    const ended = sandboxWith(
      async (link, _out, ctxPath) => {
        await link.call('bootstrap', { argv: [] });
        await link.call('started', { pid: 7 });
        const agent = await CtxLink.open(ctxPath);
        await expect(agent.call('exited')).rejects.toThrow(/invalid_request: exited is for the supervisor/);
        agent.close();
        const turn = link.call('exited').then(() => order.push('ended may go'));
        order.push('ended asked');
        setTimeout(letOtherPrint, 50);
        await turn;
        return 5;
      },
      { command: ['true'] },
      { id: 'sbx_ended', startsFirst },
    );
    await other.sandbox.start();
    await ended.sandbox.start();
    expect(await ended.sandbox.exited).toMatchObject({ exitCode: 5, reason: 'exited' });
    await other.sandbox.exited;
    expect(order).toEqual(['ended asked', 'other printed', 'ended may go']);
  });

  it('falls back to the image CMD and refuses when there is none', async () => {
    const { sandbox } = sandboxWith(async (link) => {
      const boot = (await link.call('bootstrap', { argv: ['node', 'agent.mjs'] })) as { command: string[] };
      return boot.command.length;
    });
    await sandbox.start();
    expect((await sandbox.exited).exitCode).toBe(2);
  });

  it('gives the supervisor what it needs to end the run without this runner', async () => {
    const { sandbox } = sandboxWith(
      async (link) => {
        const boot = (await link.call('bootstrap', { argv: [] })) as Record<string, unknown>;
        const deadlineMs = boot['deadlineMs'] as number;
        return deadlineMs > 0 && deadlineMs <= 60_000 && boot['runnerGraceMs'] === RUNNER_GRACE_MS ? 0 : 1;
      },
      { command: ['true'], limits: { timeoutMs: 60_000 } },
    );
    await sandbox.start();
    expect(await sandbox.exited).toMatchObject({ exitCode: 0, reason: 'exited' });
  });

  it('removes what it created when the container cannot be created', async () => {
    const { runtime, sandbox } = sandboxWith(async () => 0);
    runtime.failCreate = true;
    await expect(sandbox.start()).rejects.toMatchObject({ code: 'E_IMAGE_NOT_FOUND' });
    expect(sandbox.state).toBe('failed');
    expect(await leftovers()).toEqual([]);
  });

  it('destroys on timeout and on request, idempotently', async () => {
    const { sandbox } = sandboxWith(() => new Promise(() => {}), { limits: { timeoutMs: 1_000 } });
    await sandbox.start();
    expect(await sandbox.exited).toEqual({ exitCode: 143, reason: 'timeout', oomKilled: false });
    expect(await sandbox.destroy()).toEqual({ exitCode: 143, reason: 'timeout', oomKilled: false });
    expect(await leftovers()).toEqual([]);
  });

  it('removes what a start under way creates when destroyed mid-start', async () => {
    const { runtime, sandbox } = sandboxWith(() => new Promise(() => {}));
    const started = sandbox.start();
    const exit = await sandbox.destroy();
    await started;
    expect(exit).toEqual({ exitCode: 143, reason: 'destroyed', oomKilled: false });
    expect(runtime.containers[0]?.removed).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  it('answers a connect that waits for a new credential with broken when the sandbox is destroyed', async () => {
    const credentials = await prepareInjection({
      manifest: { connections: [{ id: 'gmail', mode: 'oauth_redirect', provider: 'google' }] },
      credentials: { gmail: { access_token: 'ya29.destroy-canary-01', expires_at: Date.now() - 60_000 } },
    });
    let answer: string | undefined;
    const runtime = new FakeRuntime(async (link) => {
      await link.call('bootstrap', { argv: ['x'] });
      await link.call('started', { pid: 7 });
      answer = await link.call('connect', { connectionId: 'gmail' }).then(
        () => 'resolved',
        (e: Error) => e.message,
      );
      return 0;
    });
    const sandbox = new Sandbox('sbx_test', resolveSandboxOptions({ image: 'grexal/agent' }), {
      runtime,
      stateDir,
      logger,
      credentials,
    });
    const states: string[] = [];
    sandbox.onEvent((e) => {
      if (e.type === 'state') states.push(e.state);
    });
    await sandbox.start();
    for (let i = 0; i < 200 && sandbox.state !== 'awaiting_credentials'; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(sandbox.state).toBe('awaiting_credentials');
    await sandbox.destroy();
    for (let i = 0; i < 200 && answer === undefined; i++)
      await new Promise((resolve) => setTimeout(resolve, 10));
    expect(answer).toMatch(/^broken: .*the sandbox is ending/);
    expect(states).toEqual(['running', 'awaiting_credentials', 'running', 'exited']);
  });

  it('answers takeover requests on a non-desktop sandbox with takeover_unavailable', async () => {
    const { sandbox } = sandboxWith(async (link) => {
      await link.call('bootstrap', { argv: ['x'] });
      await link.call('request_takeover', { reason: 'log in' }).catch((e: Error) => {
        if (!/takeover_unavailable/.test(e.message)) throw e;
      });
      await expect(link.call('connect', { connectionId: 'openai' })).rejects.toThrow(/not_declared/);
      return 0;
    });
    await sandbox.start();
    expect((await sandbox.exited).exitCode).toBe(0);
  });

  it('ends as failed/engine_lost when the engine goes, naming the endpoint and the fix', async () => {
    const { runtime, sandbox } = sandboxWith(async (link) => {
      await link.call('bootstrap', { argv: ['x'] });
      const engine = { kind: 'lost' as const, endpoint: 'unix:///e.sock', detail: 'the wait stream closed' };
      return { exitCode: -1, oomKilled: false, engine };
    });
    const seen: string[] = [];
    sandbox.onEvent((e) => seen.push(e.type === 'error' ? e.code : e.type === 'state' ? e.state : e.type));
    await sandbox.start();
    const exit = await sandbox.exited;
    expect(exit).toMatchObject({ exitCode: -1, reason: 'engine_lost', oomKilled: false });
    expect(exit.message).toContain('unix:///e.sock');
    expect(exit.message).toContain('grexal doctor --fix');
    expect(seen).toEqual(['claimed', 'running', 'E_ENGINE_LOST', 'exit', 'failed']);
    expect(sandbox.state).toBe('failed');
    expect(runtime.containers[0]?.removed).toBe(true);
    expect(await leftovers()).toEqual([]);
  });

  it('reports a clean engine stop as engine_stopped, not as the agent exiting 143', async () => {
    const { sandbox } = sandboxWith(async () => ({
      exitCode: 143,
      oomKilled: false,
      engine: { kind: 'stopped' as const, endpoint: 'unix:///e.sock', detail: 'it stopped answering' },
    }));
    await sandbox.start();
    expect(await sandbox.exited).toMatchObject({ exitCode: 143, reason: 'engine_stopped' });
    expect(sandbox.state).toBe('failed');
  });

  it("names an OOM from the cgroup's record even when the agent exits 1", async () => {
    const { sandbox } = sandboxWith(async () => ({ exitCode: 1, oomKilled: true }));
    await sandbox.start();
    expect(await sandbox.exited).toEqual({ exitCode: 1, reason: 'oom', oomKilled: true });
  });

  it('answers destroy while the engine hangs on stop, once the wait ends', async () => {
    let endWait!: (status: ExitStatus) => void;
    const { runtime, sandbox } = sandboxWith(
      () =>
        new Promise((resolve) => {
          endWait = resolve;
        }),
    );
    await sandbox.start();
    const container = runtime.containers[0]!;
    // stop() never answers, as a hung engine's; the wait then ends through the engine watch.
    container.stop = () => new Promise(() => {});
    const destroyed = sandbox.destroy();
    const engine = { kind: 'lost' as const, endpoint: 'unix:///e.sock', detail: 'no answer for 6 s' };
    setTimeout(() => endWait({ exitCode: -1, oomKilled: false, engine }), 20);
    expect(await destroyed).toMatchObject({ reason: 'engine_lost' });
  });
});
