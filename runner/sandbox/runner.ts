/**
 * The runner: one per process. It owns the engine connection, the state directory and every live
 * sandbox, removes what dead runners left behind, and wires credentials and takeovers into each
 * sandbox (runner/inject and runner/takeover never meet otherwise).
 */
import pino, { type Logger } from 'pino';
import { TAKEOVER_DEFAULT_TIMEOUT_MS } from '../../sandbox-agent/protocol.ts';
import { GrexalError } from '../errors.ts';
import { type CredentialProvider, prepareInjection } from '../inject/index.ts';
import { type ContainerRuntime, DockerRuntime, type IdIssuer, InstanceIds } from '../runtime/index.ts';
import { TakeoverBroker } from '../takeover/index.ts';
import { EventBus } from './events.ts';
import { defaultStateDir, reapDeadInstanceDirs, removeInstanceDir } from './host-dir.ts';
import { resolveSandboxOptions } from './options.ts';
import type { SandboxTakeovers } from './ports.ts';
import { Sandbox } from './sandbox.ts';

export interface RunnerOptions {
  /** The container runtime; Docker found through DOCKER_HOST or /var/run/docker.sock by default. */
  runtime?: ContainerRuntime;
  /** Where per-sandbox directories live. Default: `GREXAL_STATE_DIR`, else /run/grexal-runner (root). */
  stateDir?: string;
  /** Default: pino at `GREXAL_LOG_LEVEL` (warn), to stderr. */
  logger?: Logger;
  /** Refreshes OAuth tokens near expiry. Default: none (an expired token answers `broken`). */
  credentialProvider?: CredentialProvider;
  /** Refresh an OAuth token that expires within this many ms. Default 60 000. */
  refreshWindowMs?: number;
  /** Origin of the server that serves takeover pages; set later by whoever serves them. */
  takeoverBaseUrl?: string;
  signal?: AbortSignal;
}

export interface CreateSandboxInput {
  /** `{ connections: [...] }` as in grexal.json. */
  manifest?: unknown;
  /** The user's credentials, keyed by connection id. */
  credentials?: unknown;
  /** Everything of `sandboxOptionsSchema`: image, command, env, desktop, limits, runtime. */
  [option: string]: unknown;
}

export class Runner implements AsyncDisposable {
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly buses = new Map<string, EventBus>();
  /** Leftovers of dead runners, removed in the background from start. */
  readonly reaped: Promise<string[]>;
  /** Every takeover of this runner's sandboxes; whoever serves the pages mounts its handlers. */
  readonly takeovers: TakeoverBroker;
  private readonly unwatchEngine: () => void;

  private constructor(
    readonly runtime: ContainerRuntime,
    readonly stateDir: string,
    readonly logger: Logger,
    /** Mints sandbox and takeover ids and tells which earlier runner on this state dir issued one. */
    readonly ids: IdIssuer,
    private readonly options: RunnerOptions,
  ) {
    this.takeovers = new TakeoverBroker({
      baseUrl: options.takeoverBaseUrl,
      ids,
      onEvent: (event) => this.buses.get(event.sandboxId)?.emit(event),
      log: logger.child({ component: 'takeover' }),
    });
    this.reaped = this.reapLeftovers();
    // The sandboxes end by themselves (their waits see the loss); the log says why, for operators.
    this.unwatchEngine = runtime.onEngineChange((change) => {
      if (change.type === 'lost')
        logger.error(
          { endpoint: change.endpoint, detail: change.detail },
          'the engine went away: live sandboxes end as engine_lost. Run `grexal doctor --fix` or start Docker.',
        );
      else
        logger.warn(
          { endpoint: change.endpoint, reaped: change.reaped },
          'the engine answers again; removed the containers of sandboxes that ended meanwhile',
        );
    });
  }

  static async start(options: RunnerOptions = {}): Promise<Runner> {
    const runtime = options.runtime ?? (await DockerRuntime.connect({ signal: options.signal }));
    const logger =
      options.logger ?? pino({ level: process.env['GREXAL_LOG_LEVEL'] ?? 'warn' }, pino.destination(2));
    const stateDir = options.stateDir ?? defaultStateDir();
    const ids = await InstanceIds.open(stateDir, runtime.instanceId).catch((error: unknown) => {
      throw new GrexalError(
        'E_INTERNAL',
        `Cannot use the state directory ${stateDir}: ${(error as Error).message}. Set GREXAL_STATE_DIR to a directory this user can write.`,
        { cause: error },
      );
    });
    return new Runner(runtime, stateDir, logger, ids, options);
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
    const id = this.ids.mint('sbx');
    const events = new EventBus();
    const credentials =
      manifest === undefined && given === undefined
        ? undefined
        : await prepareInjection({
            manifest,
            credentials: given,
            provider: this.options.credentialProvider,
            refreshWindowMs: this.options.refreshWindowMs,
            onEvent: (event) => events.emit(event),
          });
    const sandbox = new Sandbox(
      id,
      options,
      {
        runtime: this.runtime,
        stateDir: this.stateDir,
        logger: this.logger.child({ sandboxId: id }),
        credentials,
        takeovers: this.sandboxTakeovers(),
      },
      events,
    );
    this.sandboxes.set(id, sandbox);
    this.buses.set(id, events);
    void sandbox.exited.then(() => {
      this.sandboxes.delete(id);
      this.buses.delete(id);
    });
    return sandbox;
  }

  private sandboxTakeovers(): SandboxTakeovers {
    return {
      request: async (request) => {
        const { done } = this.takeovers.request({
          ...request,
          timeoutMs: request.timeoutMs ?? TAKEOVER_DEFAULT_TIMEOUT_MS,
        });
        await done;
      },
      cancelAllFor: (sandboxId) => {
        this.takeovers.cancelAllFor(sandboxId);
      },
    };
  }

  get(id: string): Sandbox | undefined {
    return this.sandboxes.get(id);
  }

  list(): Sandbox[] {
    return [...this.sandboxes.values()];
  }

  /** Destroys every sandbox this runner owns. */
  async close(): Promise<void> {
    this.unwatchEngine();
    await Promise.allSettled(this.list().map((sandbox) => sandbox.destroy('destroyed')));
    await this.reaped;
    await removeInstanceDir(this.stateDir, this.runtime.instanceId);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
