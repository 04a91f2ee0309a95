/**
 * The runner: one per process. It owns the engine connection, the state directory and every live
 * sandbox, removes what dead runners left behind, and wires credentials and takeovers into each
 * sandbox (runner/inject and runner/takeover never meet otherwise).
 */
import pino, { type Logger } from 'pino';
import { GrexalError } from '../errors.ts';
import { type ContainerRuntime, DockerRuntime } from '../runtime/index.ts';
import { EventBus } from './events.ts';
import { defaultStateDir, newSandboxId, reapDeadInstanceDirs } from './host-dir.ts';
import { resolveSandboxOptions } from './options.ts';
import type { SandboxCredentials, SandboxTakeovers } from './ports.ts';
import { Sandbox } from './sandbox.ts';

export interface RunnerOptions {
  /** The container runtime; Docker found through DOCKER_HOST or /var/run/docker.sock by default. */
  runtime?: ContainerRuntime;
  /** Where per-sandbox directories live. Default: `GREXAL_STATE_DIR`, else /run/grexal-runner (root). */
  stateDir?: string;
  /** Default: pino at `GREXAL_LOG_LEVEL` (warn), to stderr. */
  logger?: Logger;
  takeovers?: SandboxTakeovers;
  /**
   * Turns a request's manifest and credentials into what the sandbox injects; validation errors
   * are thrown from here, before anything exists.
   */
  prepareCredentials?: (input: CredentialsInput, events: EventBus) => Promise<SandboxCredentials | undefined>;
  signal?: AbortSignal;
}

export interface CredentialsInput {
  manifest?: unknown;
  credentials?: unknown;
}

export interface CreateSandboxInput extends CredentialsInput {
  /** Everything of `sandboxOptionsSchema`: image, command, env, desktop, limits, runtime. */
  [option: string]: unknown;
}

export class Runner implements AsyncDisposable {
  private readonly sandboxes = new Map<string, Sandbox>();
  /** Leftovers of dead runners, removed in the background from start. */
  readonly reaped: Promise<string[]>;

  private constructor(
    readonly runtime: ContainerRuntime,
    readonly stateDir: string,
    readonly logger: Logger,
    private readonly options: RunnerOptions,
  ) {
    this.reaped = this.reapLeftovers();
  }

  static async start(options: RunnerOptions = {}): Promise<Runner> {
    const runtime = options.runtime ?? (await DockerRuntime.connect({ signal: options.signal }));
    const logger =
      options.logger ?? pino({ level: process.env['GREXAL_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
    return new Runner(runtime, options.stateDir ?? defaultStateDir(), logger, options);
  }

  private async reapLeftovers(): Promise<string[]> {
    try {
      const [containers, dirs] = await Promise.all([
        this.runtime.reapLeftovers(),
        reapDeadInstanceDirs(this.stateDir),
      ]);
      if (containers.length + dirs.length > 0)
        this.logger.info({ containers, dirs }, 'removed leftovers of dead runners');
      return containers;
    } catch (error) {
      this.logger.warn({ err: error }, 'could not remove leftovers of dead runners');
      return [];
    }
  }

  /** Validates and prepares a sandbox; nothing exists in the engine until `sandbox.start()`. */
  async create(input: CreateSandboxInput): Promise<Sandbox> {
    const { manifest, credentials: given, ...rest } = input;
    const options = resolveSandboxOptions(rest);
    const id = newSandboxId();
    const events = new EventBus();
    const credentials =
      manifest === undefined && given === undefined
        ? undefined
        : await this.requireCredentialSupport()({ manifest, credentials: given }, events);
    const sandbox = new Sandbox(
      id,
      options,
      {
        runtime: this.runtime,
        stateDir: this.stateDir,
        logger: this.logger.child({ sandboxId: id }),
        credentials,
        takeovers: this.options.takeovers,
      },
      events,
    );
    this.sandboxes.set(id, sandbox);
    void sandbox.exited.then(() => this.sandboxes.delete(id));
    return sandbox;
  }

  private requireCredentialSupport(): NonNullable<RunnerOptions['prepareCredentials']> {
    const prepare = this.options.prepareCredentials;
    if (!prepare) throw new GrexalError('E_INTERNAL', 'This runner was started without credential support.');
    return prepare;
  }

  get(id: string): Sandbox | undefined {
    return this.sandboxes.get(id);
  }

  list(): Sandbox[] {
    return [...this.sandboxes.values()];
  }

  /** Destroys every sandbox this runner owns. */
  async close(): Promise<void> {
    await Promise.allSettled(this.list().map((sandbox) => sandbox.destroy('destroyed')));
    await this.reaped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
