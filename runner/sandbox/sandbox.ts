/**
 * One sandbox from creation to removal. `start()` provisions (host directory, ctx socket,
 * hardened container) and returns once the container runs; `exited` settles after the container
 * is gone, whatever ended it. Every path, failures included, leaves nothing behind.
 */

import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import {
  type BootstrapResult,
  BROWSER_SOCKET_NAME,
  bootstrapParamsSchema,
  connectParamsSchema,
  requestTakeoverParamsSchema,
  VNC_SOCKET_NAME,
} from '../../sandbox-agent/protocol.ts';
import { type GrexalError, toGrexalError } from '../errors.ts';
import { type CtxHandlers, CtxServer } from '../inject/ctx-server.ts';
import type { NetworkManager, NetworkPolicy } from '../network/index.ts';
import type { ContainerHandle, ContainerRuntime, ExitStatus } from '../runtime/index.ts';
import { bootstrapResult } from './bootstrap.ts';
import { engineError } from './engine-error.ts';
import {
  EventBus,
  type EventListener,
  type ExitReason,
  failedReason,
  type SandboxExit,
  type SandboxState,
} from './events.ts';
import { createHostRunDir, type HostRunDir, removeHostRunDir } from './host-dir.ts';
import { NetworkWiring } from './network-wiring.ts';
import type { ResolvedSandboxOptions } from './options.ts';
import type { SandboxCredentials, SandboxTakeovers } from './ports.ts';

export interface SandboxDeps {
  runtime: ContainerRuntime;
  stateDir: string;
  logger: Logger;
  credentials?: SandboxCredentials;
  takeovers?: SandboxTakeovers;
  /** Wires the container's network namespace; without one (unit tests' fakes) nothing is wired. */
  network?: NetworkManager;
  /** The effective policy (orchestrator and manifest combined). Default `public`. */
  networkPolicy?: NetworkPolicy;
  /**
   * Nobody asked for the policy (it is the default): on a host that cannot wire networks (not
   * root, no nftables) the sandbox then runs with `none` instead of failing.
   */
  networkPolicyImplicit?: boolean;
}

/** How long output may trail the container's exit before the exit is reported anyway. */
const OUTPUT_DRAIN_MS = 2_000;

const codedError = (code: string, message: string) => Object.assign(new Error(message), { code });

export class Sandbox implements AsyncDisposable {
  private currentState: SandboxState = 'starting';
  private readonly events: EventBus;
  private container?: ContainerHandle;
  private ctxServer?: CtxServer;
  private hostRunDir?: HostRunDir;
  /** Epoch ms when the run's time is up; set just before the container starts. */
  private deadlineAt?: number;
  private bootstrapped = false;
  private readonly network: NetworkWiring;
  private timeout?: NodeJS.Timeout;
  private ending?: { reason: ExitReason };
  private finished?: Promise<SandboxExit>;
  private starting?: Promise<void>;
  private resolveExit!: (exit: SandboxExit) => void;
  /** Settles once the sandbox has ended and everything it created is gone. */
  readonly exited: Promise<SandboxExit>;

  constructor(
    readonly id: string,
    readonly options: ResolvedSandboxOptions,
    private readonly deps: SandboxDeps,
    events = new EventBus(),
  ) {
    this.events = events;
    this.network = new NetworkWiring({
      manager: deps.network,
      sandboxId: id,
      policy: deps.networkPolicy ?? { mode: 'public' },
      implicit: deps.networkPolicyImplicit ?? false,
      logger: deps.logger,
      onEvent: (event) => this.events.emit(event),
    });
    const credentials = deps.credentials;
    if (credentials) this.events.useMask((text) => credentials.mask(text));
    this.exited = new Promise((resolve) => {
      this.resolveExit = resolve;
    });
  }

  get state(): SandboxState {
    return this.currentState;
  }

  onEvent(listener: EventListener): () => void {
    return this.events.on(listener);
  }

  private setState(state: SandboxState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.events.emit({ type: 'state', state });
  }

  start(options: { signal?: AbortSignal } = {}): Promise<void> {
    this.starting ??= this.provision(options);
    return this.starting;
  }

  private async provision(options: { signal?: AbortSignal }): Promise<void> {
    const { runtime, stateDir, logger } = this.deps;
    try {
      this.hostRunDir = await createHostRunDir(stateDir, runtime.instanceId, this.id, logger);
      const spec = {
        sandboxId: this.id,
        image: this.options.image,
        hostRunDir: this.hostRunDir.path,
        limits: this.options.limits,
        runtime: this.options.runtime,
        desktop: this.options.desktop !== undefined,
      };
      // The host side of the network is made while the engine creates the container.
      const [created, listening, prepared] = await Promise.allSettled([
        runtime.createContainer(spec, options),
        CtxServer.listen(join(this.hostRunDir.path, 'ctx.sock'), this.ctxHandlers(), {
          onInternalError: (error, method) =>
            logger.error({ err: toGrexalError(error), method }, 'ctx call failed'),
        }),
        this.network.prepare(),
      ]);
      // Keep whichever succeeded, so that cleanUp removes it if its twin failed.
      if (created.status === 'fulfilled') this.container = created.value;
      if (listening.status === 'fulfilled') this.ctxServer = listening.value;
      if (created.status === 'rejected') throw created.reason;
      if (listening.status === 'rejected') throw listening.reason;
      if (prepared.status === 'rejected') throw prepared.reason;
      const container = created.value;
      const output = await container.attach();
      const drained = Promise.all([this.relay(output.stdout, 'stdout'), this.relay(output.stderr, 'stderr')]);
      // Fixed before the container starts: the supervisor may ask for its bootstrap (and the deadline
      // in it) before the engine's answer to start() reaches us.
      this.deadlineAt = Date.now() + this.options.timeoutMs;
      const starting = container.start();
      const wired = this.network.wireAfter(starting, () => container.pid());
      await starting;
      await wired;
      options.signal?.throwIfAborted();
      logger.info({ containerId: container.id }, 'sandbox running');
      this.setState('running');
      this.timeout = setTimeout(
        () => void this.destroy('timeout'),
        Math.max(0, this.deadlineAt - Date.now()),
      );
      this.finished = this.watch(container, drained);
    } catch (error) {
      const failure = toGrexalError(error);
      await this.cleanUp();
      this.fail(failure);
      throw failure;
    }
  }

  get networkPolicy(): NetworkPolicy {
    return this.network.policy;
  }

  /** Replaces the policy of a running sandbox for its next connections; validated first. */
  setNetworkPolicy(input: unknown): Promise<NetworkPolicy> {
    const container = this.container;
    const live = container && this.finished && !this.ending;
    return this.network.setPolicy(input, live ? () => container.pid() : undefined);
  }

  /**
   * An exit nobody asked for: past the deadline it is the supervisor's own enforcement of it (its
   * timer can beat ours by the time the bootstrap took to arrive), so it is a timeout all the same.
   */
  private exitReason(oomKilled: boolean | undefined, exitedAt: number): ExitReason {
    if (oomKilled) return 'oom';
    return this.deadlineAt !== undefined && exitedAt >= this.deadlineAt ? 'timeout' : 'exited';
  }

  private fail(error: GrexalError): void {
    this.events.emit({ type: 'error', code: error.code, message: error.message });
    this.setState('failed');
    this.resolveExit({ exitCode: -1, reason: 'failed', oomKilled: false });
  }

  private async watch(container: ContainerHandle, drained: Promise<unknown>): Promise<SandboxExit> {
    let exit: SandboxExit;
    try {
      const status = await container.wait();
      const exitedAt = Date.now();
      // A lost engine may hold the output stream open for good: nothing more will come through it.
      const drainMs = status.engine?.kind === 'lost' ? 0 : OUTPUT_DRAIN_MS;
      await Promise.race([drained, new Promise((resolve) => setTimeout(resolve, drainMs).unref())]);
      exit = this.exitOf(status, exitedAt);
    } catch (error) {
      this.deps.logger.error({ err: toGrexalError(error) }, 'waiting for the container failed');
      exit = { exitCode: -1, reason: this.ending?.reason ?? 'failed', oomKilled: false };
    }
    await this.cleanUp();
    this.events.emit({ type: 'exit', ...exit });
    this.setState(failedReason(exit.reason) ? 'failed' : 'exited');
    this.resolveExit(exit);
    return exit;
  }

  /**
   * The engine's own end wins over a destroy under way (the container's fate is the engine's
   * then); the cgroup's OOM record wins over the exit code, whatever the code.
   */
  private exitOf(status: ExitStatus, exitedAt: number): SandboxExit {
    const { exitCode, oomKilled, engine } = status;
    if (engine) {
      const error = engineError(engine.kind, engine.endpoint, engine.detail, exitCode);
      // The runner logs the loss once; the event and the exit carry it for this sandbox.
      this.deps.logger.info({ code: error.code }, 'the engine ended the sandbox');
      this.events.emit({ type: 'error', code: error.code, message: error.message });
      const reason = engine.kind === 'lost' ? 'engine_lost' : 'engine_stopped';
      return { exitCode, reason, oomKilled, message: error.message };
    }
    return { exitCode, reason: this.ending?.reason ?? this.exitReason(oomKilled, exitedAt), oomKilled };
  }

  private relay(stream: Readable, name: 'stdout' | 'stderr'): Promise<void> {
    const masked = this.deps.credentials
      ? stream.setEncoding('utf8').pipe(this.deps.credentials.createMaskingStream())
      : stream.setEncoding('utf8');
    masked.on('data', (text: string | Buffer) => {
      // Output can overtake the engine's answer to start(): the sandbox runs once it speaks.
      if (this.currentState === 'starting') this.setState('running');
      this.events.emit({ type: 'log', stream: name, text: String(text) });
    });
    return new Promise((resolve) => {
      masked.once('end', resolve);
      masked.once('close', resolve);
      masked.once('error', resolve);
    });
  }

  private ctxHandlers(): CtxHandlers {
    const { credentials, takeovers } = this.deps;
    return {
      bootstrap: async (params) => {
        if (this.bootstrapped) throw codedError('invalid_request', 'The sandbox was already bootstrapped.');
        this.bootstrapped = true;
        await this.network.ready.catch(() => {
          throw codedError('internal', "The sandbox's network could not be wired.");
        });
        return this.bootstrap(bootstrapParamsSchema.parse(params).argv);
      },
      started: async () => ({}),
      connect: async (params, call) => {
        const parsed = connectParamsSchema.safeParse(params);
        if (!parsed.success) throw codedError('invalid_request', 'connect needs { connectionId }.');
        if (!credentials)
          throw codedError('not_declared', `Connection '${parsed.data.connectionId}' is not declared.`);
        return credentials.connect(parsed.data.connectionId, call.signal);
      },
      request_takeover: async (params, call) => {
        const parsed = requestTakeoverParamsSchema.safeParse(params);
        if (!parsed.success) {
          const issue = parsed.error.issues[0];
          const path = issue?.path.length ? `${issue.path.join('.')}: ` : '';
          throw codedError('invalid_request', `request_takeover: ${path}${issue?.message ?? 'invalid'}.`);
        }
        if (!takeovers || !this.options.desktop || !this.hostRunDir) {
          throw codedError('takeover_unavailable', 'Takeovers need a desktop sandbox (--desktop).');
        }
        const { connectionId } = parsed.data;
        this.setState('awaiting_takeover');
        try {
          await takeovers.request({
            ...parsed.data,
            sandboxId: this.id,
            label: connectionId ? credentials?.connectionLabel(connectionId) : undefined,
            vncSocketPath: join(this.hostRunDir.path, VNC_SOCKET_NAME),
            browserSocketPath: join(this.hostRunDir.path, BROWSER_SOCKET_NAME),
            signal: call.signal,
          });
          return { outcome: 'completed' };
        } finally {
          if (this.currentState === 'awaiting_takeover') this.setState('running');
        }
      },
    };
  }

  private bootstrap(argv: string[]): BootstrapResult {
    return bootstrapResult({
      sandboxId: this.id,
      options: this.options,
      credentials: this.deps.credentials,
      argv,
      deadlineAt: this.deadlineAt ?? Date.now() + this.options.timeoutMs,
    });
  }

  /** Stops and removes everything; idempotent. Resolves with how the sandbox ended. */
  async destroy(reason: ExitReason = 'destroyed'): Promise<SandboxExit> {
    // A start under way finishes first: what it creates must be there to be removed.
    await this.starting?.catch(() => {});
    if (!this.finished) {
      // Never started, or failed while starting: cleanUp already ran or has nothing to do.
      await this.cleanUp();
      return this.exited;
    }
    if (!this.ending) {
      this.ending = { reason };
      // The agent gets its grace period; Docker's own kill comes a second later.
      const stopped = this.container?.stop(this.options.stopTimeoutMs + 1_000).catch((error: unknown) => {
        this.deps.logger.warn({ err: toGrexalError(error) }, 'stopping the container failed; removing it');
      });
      // A hung engine holds stop() to its deadline; the engine watch ends the wait sooner.
      await Promise.race([stopped, this.finished]);
    }
    return this.finished;
  }

  private cleaned?: Promise<void>;

  private cleanUp(): Promise<void> {
    this.cleaned ??= (async () => {
      clearTimeout(this.timeout);
      this.deps.takeovers?.cancelAllFor(this.id);
      const results = await Promise.allSettled([
        this.network.close(),
        this.container?.remove(),
        this.ctxServer?.close(),
      ]);
      // After the container: its bind of the tmpfs goes with it. A failure here (umount) must not
      // cost the rest of the cleanup; the reaper of the next runner retries it.
      if (this.hostRunDir) results.push(...(await Promise.allSettled([removeHostRunDir(this.hostRunDir)])));
      this.deps.credentials?.dispose();
      for (const result of results) {
        if (result.status === 'rejected')
          this.deps.logger.error({ err: toGrexalError(result.reason) }, 'cleanup step failed');
      }
    })();
    return this.cleaned;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
