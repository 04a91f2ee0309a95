/**
 * The runner: one per process. It owns the engine connection, the state directory and every live
 * sandbox, removes what dead runners left behind, and wires credentials and takeovers into each
 * sandbox (runner/inject and runner/takeover never meet otherwise).
 */
import { hostname } from 'node:os';
import pino, { type Logger } from 'pino';
import { TAKEOVER_DEFAULT_TIMEOUT_MS } from '../../sandbox-agent/protocol.ts';
import { GrexalError } from '../errors.ts';
import { prepareInjection, reconnectTimeoutMsSchema } from '../inject/index.ts';
import { HostNetworkManager, type NetworkManager, parseDangerousDnsOverride } from '../network/index.ts';
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
import { hasManifestNetwork, runPolicy } from './run-policy.ts';
import type { CreateSandboxInput, RunnerOptions } from './runner-options.ts';
import { IDLE_ENTRY_POLICY, Sandbox } from './sandbox.ts';
import { StartsFirst } from './starts-first.ts';

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
  /** Ended runs' containers wait while other runs start, never while the runner is at its cap. */
  private readonly startsFirst: StartsFirst;

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
    this.startsFirst = new StartsFirst({ mayHold: () => !this.pools.full });
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
    // `base` given: pino's default is computed at its load, which `grexal run`'s startup snapshot
    // freezes (the builder's pid and host name).
    const base = { pid: process.pid, hostname: hostname() };
    const logger =
      options.logger ?? pino({ level: process.env['GREXAL_LOG_LEVEL'] ?? 'warn', base }, pino.destination(2));
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
    const { manifest, policy } = runPolicy(givenManifest, network);
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
        startsFirst: this.startsFirst,
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
        startsFirst: this.startsFirst,
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
