/**
 * A container runtime without containers, for the API's unit tests: each "container" prints what
 * the test says, then runs until the test ends it or it is stopped. The real Runner and Sandbox run
 * on top (host directory, ctx socket, events), so only the engine is fake.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import type {
  ContainerHandle,
  ContainerRuntime,
  ContainerSpec,
  EngineChange,
  EngineInfo,
  ExitStatus,
  ImageInfo,
} from '../../runtime/index.ts';
import { Runner } from '../../sandbox/index.ts';

export class FakeContainer implements ContainerHandle {
  readonly id: string;
  readonly stdout = new PassThrough();
  readonly stderr = new PassThrough();
  started = false;
  removed = false;
  private finish!: (status: ExitStatus) => void;
  private readonly exit = new Promise<ExitStatus>((resolve) => {
    this.finish = resolve;
  });

  constructor(readonly spec: ContainerSpec) {
    this.id = `fake-${spec.sandboxId}`;
  }

  get sandboxId(): string {
    return this.spec.sandboxId;
  }

  async attach() {
    return { stdout: this.stdout, stderr: this.stderr };
  }

  async start(): Promise<void> {
    this.started = true;
  }

  async pid(): Promise<number> {
    return 0;
  }

  /** The agent ends by itself (or the engine ends it: `status.engine`). */
  end(exitCode: number, status: Partial<ExitStatus> = {}): void {
    this.stdout.end();
    this.stderr.end();
    this.finish({ exitCode, oomKilled: false, ...status });
  }

  wait(): Promise<ExitStatus> {
    return this.exit;
  }

  async stop(): Promise<void> {
    this.end(143);
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
  async remove(): Promise<void> {
    this.removed = true;
    this.end(137);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.remove();
  }
}

export class FakeRuntime implements ContainerRuntime {
  /** Another host's by default, so the runner presumes it alive; tests of restarts name a dead one. */
  constructor(readonly instanceId = 'fake-host/1-1') {}
  readonly containers: FakeContainer[] = [];
  images = new Set(['grexal/agent']);
  /** Called once each container starts; the test drives it from there. */
  onStart: (container: FakeContainer) => void = () => {};

  async info(): Promise<EngineInfo> {
    return {
      endpoint: 'fake://',
      version: '0',
      apiVersion: '0',
      runtimes: ['runc'],
      defaultRuntime: 'runc',
      storageDriver: 'fake',
      dataRoot: '/nonexistent',
    };
  }
  async image(tag: string): Promise<ImageInfo | undefined> {
    return this.images.has(tag) ? { tag, id: `sha256:${tag}`, labels: {}, sizeBytes: 1 } : undefined;
  }
  buildImage(): never {
    throw new Error('unused');
  }
  importImage(): never {
    throw new Error('unused');
  }
  async createContainer(spec: ContainerSpec): Promise<ContainerHandle> {
    const container = new FakeContainer(spec);
    this.containers.push(container);
    const start = container.start.bind(container);
    container.start = async () => {
      await start();
      // After the sandbox has seen start() return, as with a real engine (the agent needs a moment).
      setImmediate(() => this.onStart(container));
    };
    return container;
  }
  async reapLeftovers(): Promise<string[]> {
    return [];
  }
  private readonly engineListeners = new Set<(change: EngineChange) => void>();
  onEngineChange(listener: (change: EngineChange) => void): () => void {
    this.engineListeners.add(listener);
    return () => this.engineListeners.delete(listener);
  }
  /** As the Docker runtime's watch announces it. */
  engineChange(change: EngineChange): void {
    for (const listener of this.engineListeners) listener(change);
  }
}

/**
 * A real Runner over a FakeRuntime in a temporary state directory; `dispose` removes it all.
 * Given a `stateDir`, it runs there (a restart on the same directory) and leaves it in place.
 */
export async function fakeRunner(options: { stateDir?: string; instanceId?: string } = {}): Promise<{
  runner: Runner;
  runtime: FakeRuntime;
  stateDir: string;
  dispose(): Promise<void>;
}> {
  const stateDir = options.stateDir ?? (await mkdtemp(join(tmpdir(), 'grexal-api-test-')));
  const runtime = new FakeRuntime(options.instanceId);
  const runner = await Runner.start({ runtime, stateDir, logger: pino({ level: 'silent' }) });
  return {
    runner,
    runtime,
    stateDir,
    async dispose() {
      await runner.close();
      if (!options.stateDir) await rm(stateDir, { recursive: true, force: true });
    },
  };
}
