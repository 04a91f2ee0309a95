/**
 * The runner: one per process. It owns the engine connection, the state directory and every live
 * sandbox, removes what dead runners left behind, and wires credentials and takeovers into each
 * sandbox (runner/inject and runner/takeover never meet otherwise).
 */
import pino, { type Logger } from 'pino';
import { TAKEOVER_DEFAULT_TIMEOUT_MS } from '../../sandbox-agent/protocol.ts';
import { GrexalError } from '../errors.ts';
import { type CredentialProvider, prepareInjection, reconnectTimeoutMsSchema } from '../inject/index.ts';
import {
  type DangerousDnsOverride,
  effectivePolicy,
  HostNetworkManager,
  type NetworkManager,
  type NetworkPolicy,
  parseDangerousDnsOverride,
  parseNetworkPolicy,
} from '../network/index.ts';
import { type PoolRequest, type PoolSpec, type PoolStatus, Pools, parsePoolSpec } from '../pool/index.ts';
import {
  type ContainerRuntime,
  DockerRuntime,
  type IdIssuer,
  InstanceIds,
  isInstanceAlive,
} from '../runtime/index.ts';
import { TakeoverBroker } from '../takeover/index.ts';
import { mark } from '../timings.ts';
import { parseOrThrow } from '../validation.ts';
import type { SandboxBrowser } from './browser-wiring.ts';
import { EventBus } from './events.ts';
import { defaultStateDir, reapDeadInstanceDirs, removeInstanceDir } from './host-dir.ts';
import { type ResolvedSandboxOptions, resolveSandboxOptions } from './options.ts';
import {
  checkPoolSpec,
  DESKTOP_REFILL_HOLD_MS,
  ENTRY_CPU_SHARES,
  poolKey,
  poolNameOf,
} from './pool-entries.ts';
import type { SandboxTakeovers } from './ports.ts';
import { IDLE_ENTRY_POLICY, Sandbox } from './sandbox.ts';

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
  /**
   * Wires each sandbox's network. Default: the host's (veth, nftables, proxy) when the runtime is
   * Docker; none for other runtimes such as tests' fakes, whose sandboxes then get no link at all.
   */
  network?: NetworkManager;
  /**
   * Tests only: `.test` names answered with the given address and dialled at `dialHost`, so a test
   * reaches its own listeners by name. Refused for any other name; `grexal serve` refuses it
   * unless explicitly enabled.
   */
  dangerouslyOverrideDns?: DangerousDnsOverride;
  /** Pool entries starting at once across every pool. Default 2. */
  poolConcurrency?: number;
  /** How often a pool looks at its image id and its entries' age. Default 5000. */
  poolCheckIntervalMs?: number;
  /** How long a pool's refill waits for the next claim of a burst. Default 250; 0: at once. */
  poolRefillHoldMs?: number;
  /** The same for a desktop pool. Default DESKTOP_REFILL_HOLD_MS. */
  poolDesktopRefillHoldMs?: number;
  /** A pool entry's CPU weight while it starts (SandboxDeps.warmingCpuShares). Default ENTRY_CPU_SHARES. */
  poolEntryCpuShares?: number;
  /**
   * Whether the default Docker runtime waits for the engine's ping before start() resolves.
   * Default true; false for one-shot runs (`grexal run`): the ping runs beside the first calls
   * and a missing engine fails the create with the same E_ENGINE_UNREACHABLE.
   */
  pingFirst?: boolean;
  /**
   * Leftovers of dead runners are removed once this settles. Default: at start. `grexal run`
   * passes its sandbox's start: the reaper's engine calls and spawns then stay off its path.
   */
  reapAfter?: Promise<unknown>;
  signal?: AbortSignal;
}

export interface CreateSandboxInput {
  /** `{ connections: [...], network?: policy }` as in grexal.json. */
  manifest?: unknown;
  /** The orchestrator's network policy; it narrows the manifest's. Default `public`. */
  network?: unknown;
  /** The user's credentials, keyed by connection id. */
  credentials?: unknown;
  /** Overrides every connection's `reconnectTimeoutMs` (how long a broken one's connect waits). */
  reconnectTimeoutMs?: unknown;
  /** Serve from this pool only (still only on an exact match); cold otherwise. */
  pool?: unknown;
  /** In-process callers only (grexal dev): the browser behind the sandbox's CDP relay. Never pooled. */
  browser?: SandboxBrowser;
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
  /** Started sandboxes waiting for a run; a request that matches one exactly is served warm. */
  readonly pools: Pools<Sandbox>;
  /** Entries not yet claimed, starting or idle: a shutdown ends them without waiting for a start. */
  private readonly entries = new Set<Sandbox>();

  private readonly network?: NetworkManager;

  private constructor(
    readonly runtime: ContainerRuntime,
    readonly stateDir: string,
    readonly logger: Logger,
    /** Mints sandbox and takeover ids and tells which earlier runner on this state dir issued one. */
    readonly ids: IdIssuer,
    private readonly options: RunnerOptions,
  ) {
    this.network = options.network ?? this.defaultNetwork();
    this.takeovers = new TakeoverBroker({
      baseUrl: options.takeoverBaseUrl,
      ids,
      onEvent: (event) => this.buses.get(event.sandboxId)?.emit(event),
      log: logger.child({ component: 'takeover' }),
    });
    const reapAfter = options.reapAfter?.catch(() => {});
    this.reaped = reapAfter ? reapAfter.then(() => this.reapLeftovers()) : this.reapLeftovers();
    this.pools = new Pools<Sandbox>({
      factory: {
        create: (spec) => this.createEntry(spec),
        imageId: async (image) => (await this.runtime.image(image))?.id,
      },
      logger: logger.child({ component: 'pool' }),
      concurrency: options.poolConcurrency,
      checkIntervalMs: options.poolCheckIntervalMs,
      refillHoldMs: options.poolRefillHoldMs,
    });
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

  private defaultNetwork(): NetworkManager | undefined {
    if (!(this.runtime instanceof DockerRuntime)) return undefined;
    const given = this.options.dangerouslyOverrideDns;
    const override = given === undefined ? undefined : parseDangerousDnsOverride(given);
    return new HostNetworkManager({
      instanceId: this.runtime.instanceId,
      logger: this.logger.child({ component: 'network' }),
      isInstanceAlive,
      dangerouslyOverrideDns: override,
    });
  }

  static async start(options: RunnerOptions = {}): Promise<Runner> {
    const runtime =
      options.runtime ??
      (await DockerRuntime.connect({ signal: options.signal, pingFirst: options.pingFirst }));
    mark('engine connected');
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
    mark('instance ids');
    return new Runner(runtime, stateDir, logger, ids, options);
  }

  private async reapLeftovers(): Promise<string[]> {
    try {
      const [containers, dirs] = await Promise.all([
        this.runtime.reapLeftovers(),
        reapDeadInstanceDirs(this.stateDir),
      ]);
      // After the containers: a dead runner's links vanish with their namespaces, its table stays.
      const network =
        (await this.network?.reapLeftovers().catch((error: unknown) => {
          this.logger.warn({ err: error }, 'could not remove network leftovers of dead runners');
          return [];
        })) ?? [];
      mark('leftovers reaped');
      if (containers.length + dirs.length + network.length > 0)
        this.logger.info({ containers, dirs, network }, 'removed leftovers of dead runners');
      return containers;
    } catch (error) {
      this.logger.warn({ err: error }, 'could not remove leftovers of dead runners');
      return [];
    }
  }

  /**
   * Validates and prepares a sandbox; nothing exists in the engine until `sandbox.start()`. A
   * request that matches a pool exactly takes a started entry instead (`sandbox.warm`), its run
   * bound now; `start()` then resolves at once. `beforeCold` runs only when no entry serves the
   * request (the API's image check: a pool checks its image itself, so a claim calls no engine).
   */
  async create(
    input: CreateSandboxInput,
    hooks: { beforeCold?: () => Promise<void> } = {},
  ): Promise<Sandbox> {
    const {
      manifest: givenManifest,
      credentials: given,
      network,
      reconnectTimeoutMs,
      pool,
      browser,
      ...rest
    } = input;
    const poolName = poolNameOf(pool);
    // Not a request field (the API's schema refuses it): an in-process object, checked all the same.
    if (browser !== undefined && typeof browser?.upstream?.open !== 'function')
      throw new GrexalError(
        'E_INTERNAL',
        '`browser` is not a SandboxBrowser (it is for in-process callers only).',
      );
    const options = resolveSandboxOptions(rest);
    const { manifest, policy } = this.networkOf(givenManifest, network);
    const reconnect =
      reconnectTimeoutMs === undefined
        ? undefined
        : parseOrThrow(reconnectTimeoutMsSchema, reconnectTimeoutMs, 'sandbox request', 'reconnectTimeoutMs');
    // An entry has a link (refusing all until its claim); `none` promises no interface but lo.
    const claim =
      policy.mode === 'none' || browser ? undefined : this.pools.claim(poolKey(options), poolName);
    if (claim) {
      const sandbox = claim.entry;
      try {
        const credentials = await this.credentialsOf(manifest, given, reconnect, this.buses.get(sandbox.id));
        sandbox.claim({ options, credentials, networkPolicy: policy });
        this.entries.delete(sandbox);
      } catch (error) {
        claim.giveBack();
        throw error;
      }
      this.sandboxes.set(sandbox.id, sandbox);
      return sandbox;
    }
    await hooks.beforeCold?.();
    const id = this.ids.mint('sbx');
    const events = new EventBus();
    const credentials = await this.credentialsOf(manifest, given, reconnect, events);
    const sandbox = new Sandbox(
      id,
      options,
      {
        runtime: this.runtime,
        stateDir: this.stateDir,
        logger: this.logger.child({ sandboxId: id }),
        credentials,
        takeovers: this.sandboxTakeovers(),
        network: this.network,
        networkPolicy: policy,
        networkPolicyImplicit: network === undefined && !hasManifestNetwork(givenManifest),
        browser,
      },
      events,
    );
    this.sandboxes.set(id, sandbox);
    this.buses.set(id, events);
    void sandbox.exited.then(() => {
      this.sandboxes.delete(id);
      this.buses.delete(id);
    });
    // Under the cap, a cold sandbox takes an idle entry's place rather than being refused.
    this.pools.makeRoom();
    return sandbox;
  }

  private credentialsOf(
    manifest: unknown,
    given: unknown,
    reconnectTimeoutMs: number | undefined,
    events: EventBus | undefined,
  ) {
    if (manifest === undefined && given === undefined) return Promise.resolve(undefined);
    return prepareInjection({
      manifest,
      credentials: given,
      provider: this.options.credentialProvider,
      refreshWindowMs: this.options.refreshWindowMs,
      reconnectTimeoutMs,
      onEvent: (event) => events?.emit(event),
    });
  }

  /**
   * Makes or replaces a pool after checking its spec against the engine and the host. The spec is
   * validated here too (a library caller's, with the API's defaults: size 2, maxIdle 30 min).
   */
  async setPool(request: PoolRequest): Promise<PoolStatus> {
    const { name, ...body } = request;
    const spec = parsePoolSpec(name, body);
    const options = await checkPoolSpec(spec, this.runtime);
    return this.pools.set(
      spec,
      poolKey(options),
      options.desktop ? { refillHoldMs: this.options.poolDesktopRefillHoldMs ?? DESKTOP_REFILL_HOLD_MS } : {},
    );
  }

  /**
   * One pool entry: a sandbox created and started exactly like a cold one (hardening, host
   * directory, ctx socket, network link) with nothing of a run, ready once its supervisor waits
   * for the bootstrap. Not listed among the runner's sandboxes until claimed.
   */
  private async createEntry(spec: PoolSpec): Promise<Sandbox> {
    const options: ResolvedSandboxOptions = resolveSandboxOptions({
      image: spec.image,
      desktop: spec.desktop,
      limits: spec.limits,
      runtime: spec.runtime,
    });
    const id = this.ids.mint('sbx');
    const events = new EventBus();
    const sandbox = new Sandbox(
      id,
      options,
      {
        runtime: this.runtime,
        stateDir: this.stateDir,
        logger: this.logger.child({ sandboxId: id, pool: spec.name }),
        takeovers: this.sandboxTakeovers(),
        network: this.network,
        networkPolicy: IDLE_ENTRY_POLICY,
        networkPolicyImplicit: true,
        pooled: true,
        warmingCpuShares: this.options.poolEntryCpuShares ?? ENTRY_CPU_SHARES,
      },
      events,
    );
    this.buses.set(id, events);
    this.entries.add(sandbox);
    void sandbox.exited.then(() => {
      this.entries.delete(sandbox);
      this.sandboxes.delete(id);
      this.buses.delete(id);
    });
    await sandbox.start();
    try {
      await sandbox.waitUntilReady();
      await sandbox.endWarming();
    } catch (error) {
      await sandbox.destroy('failed');
      throw error;
    }
    return sandbox;
  }

  /**
   * Splits the manifest's `network` off (runner/inject knows connections only) and combines it
   * with the orchestrator's policy and the browser_login hosts into the sandbox's policy.
   */
  private networkOf(manifest: unknown, network: unknown): { manifest: unknown; policy: NetworkPolicy } {
    const orchestrator = network === undefined ? undefined : parseNetworkPolicy(network, 'network');
    if (typeof manifest !== 'object' || manifest === null || !('network' in manifest)) {
      return { manifest, policy: effectivePolicy({ orchestrator, loginHosts: loginHostsOf(manifest) }) };
    }
    const { network: declared, ...connections } = manifest as { network: unknown };
    const policy = effectivePolicy({
      orchestrator,
      manifest: parseNetworkPolicy(declared, 'manifest.network'),
      loginHosts: loginHostsOf(manifest),
    });
    return { manifest: Object.keys(connections).length === 0 ? undefined : connections, policy };
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
      cancelAllFor: (sandboxId, by) => {
        this.takeovers.cancelAllFor(sandboxId, by);
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
    // Pools first: a refill must not start entries while the sandboxes go. An entry still
    // waiting for its supervisor ends now rather than after its start deadline.
    await Promise.allSettled([this.pools.close(), ...[...this.entries].map((entry) => entry.destroy())]);
    await Promise.allSettled(this.list().map((sandbox) => sandbox.destroy('destroyed')));
    await this.reaped;
    await this.network?.close();
    await removeInstanceDir(this.stateDir, this.runtime.instanceId);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function hasManifestNetwork(manifest: unknown): boolean {
  return typeof manifest === 'object' && manifest !== null && 'network' in manifest;
}

/** Hosts of the manifest's browser_login `loginUrl`s, read defensively (validated elsewhere). */
function loginHostsOf(manifest: unknown): string[] {
  const connections = (manifest as { connections?: unknown } | null)?.connections;
  if (!Array.isArray(connections)) return [];
  return connections.flatMap((c: unknown) => {
    const { mode, loginUrl } = (c ?? {}) as { mode?: unknown; loginUrl?: unknown };
    if (mode !== 'browser_login' || typeof loginUrl !== 'string' || !URL.canParse(loginUrl)) return [];
    return [new URL(loginUrl).hostname];
  });
}
