/**
 * One sandbox from creation to removal. `start()` provisions (host directory, ctx socket,
 * hardened container) and returns once the container runs; `exited` settles after the container
 * is gone, whatever ended it. Every path, failures included, leaves nothing behind.
 */

import { GrexalError, toGrexalError } from '../errors.ts';
import type { CtxHandlers } from '../inject/index.ts';
import { type NetworkPolicy, policyToJson } from '../network/index.ts';
import type { ContainerHandle, ExitStatus } from '../runtime/index.ts';
import { mark } from '../timings.ts';
import { BrowserWiring } from './browser-wiring.ts';
import { createCtxHandlers } from './ctx-handlers.ts';
import {
  EventBus,
  type EventListener,
  type ExitReason,
  failedReason,
  type SandboxExit,
  type SandboxState,
} from './events.ts';
import { classifyExit } from './exit.ts';
import { LiveConnections, type LivePhase } from './live-connections.ts';
import { NetworkWiring } from './network-wiring.ts';
import type { ResolvedSandboxOptions } from './options.ts';
import { type OutputStream, outputDrained, relayOutput } from './output-relay.ts';
import type { SandboxCredentials } from './ports.ts';
import { provisionContainer } from './provision.ts';
import { RunGate } from './run-gate.ts';
import type { RunBinding, SandboxDeps } from './sandbox-deps.ts';
import { SandboxParts } from './sandbox-parts.ts';
import type { RunStart } from './starts-first.ts';

export { IDLE_ENTRY_POLICY, type RunBinding, type SandboxDeps } from './sandbox-deps.ts';

/** An ended run's container is let go this long before its deadline at the latest. */
const DEADLINE_MARGIN_MS = 250;

export class Sandbox implements AsyncDisposable {
  private currentState: SandboxState = 'starting';
  private readonly events: EventBus;
  private readonly parts = new SandboxParts();
  /** Epoch ms when the run's time is up; set just before the container starts. */
  private deadlineAt?: number;
  /** Set once the supervisor reports the agent spawned: from then on connections can change. */
  private agentStarted = false;
  private takeoverOpen = false;
  /** This run's start, for StartsFirst: from its create or claim to its first output. */
  private runStart?: RunStart;
  private waitingForCredentials = 0;
  private readonly live: LiveConnections;
  private currentOptions: ResolvedSandboxOptions;
  private credentials?: SandboxCredentials;
  /** Open once the run is bound: at once for a cold sandbox, at `claim()` for a pool entry. */
  private readonly gate: RunGate;
  private announced = false;
  /** The claim's network policy, applied before the bootstrap is answered. */
  private policyApplied: Promise<unknown> = Promise.resolve();
  private readonly network: NetworkWiring;
  private readonly browser: BrowserWiring;
  private timeout?: NodeJS.Timeout;
  private ending?: { reason: ExitReason };
  private finished?: Promise<SandboxExit>;
  private starting?: Promise<void>;
  private resolveExit!: (exit: SandboxExit) => void;
  /** Settles once the sandbox has ended and everything it created is gone. */
  readonly exited: Promise<SandboxExit>;

  constructor(
    readonly id: string,
    options: ResolvedSandboxOptions,
    private readonly deps: SandboxDeps,
    events = new EventBus(),
  ) {
    this.events = events;
    this.currentOptions = options;
    this.gate = new RunGate(!deps.pooled);
    this.network = new NetworkWiring({
      manager: deps.network,
      sandboxId: id,
      policy: deps.networkPolicy ?? { mode: 'public' },
      implicit: deps.networkPolicyImplicit ?? false,
      logger: deps.logger,
      onEvent: (event) => this.events.emit(event),
    });
    // A desktop sandbox's relay fronts its browser container (DesktopBrowser), never another browser.
    this.browser = new BrowserWiring(options.desktop ? undefined : deps.browser, deps.logger);
    this.live = new LiveConnections(
      () => this.credentials,
      () => this.livePhase(),
      () => this.parts.ctxServer,
    );
    if (deps.credentials) this.useCredentials(deps.credentials);
    this.exited = new Promise((resolve) => {
      this.resolveExit = resolve;
    });
  }

  get state(): SandboxState {
    return this.currentState;
  }

  /** The run's options; for a pool entry before its claim, the pool's (image, desktop, limits, runtime). */
  get options(): ResolvedSandboxOptions {
    return this.currentOptions;
  }

  /** Served from a pool. */
  get warm(): boolean {
    return this.deps.pooled === true;
  }

  private useCredentials(credentials: SandboxCredentials): void {
    this.credentials = credentials;
    this.events.useMask((text) => credentials.mask(text));
    credentials.onWaiting((waiting) => {
      this.waitingForCredentials = waiting;
      this.showLiveState();
    });
  }

  /**
   * Binds a run to a started pool entry, once: options, credentials (and their masking), the
   * network policy (applied before the bootstrap is answered) and the deadline, counted from now.
   */
  claim(run: RunBinding): void {
    const container = this.parts.container;
    if (!this.deps.pooled || this.gate.isOpen || !container || !this.finished || this.ending)
      throw new GrexalError(
        'E_INTERNAL',
        `Sandbox ${this.id} is not an idle pool entry; it serves one run only.`,
      );
    this.currentOptions = run.options;
    if (run.credentials) this.useCredentials(run.credentials);
    this.policyApplied = this.network.setPolicy(policyToJson(run.networkPolicy), () => container.pid());
    this.policyApplied.catch(() => {});
    this.deadlineAt = Date.now() + run.options.timeoutMs;
    this.armDeadline(this.deadlineAt);
    this.runStart = this.deps.startsFirst?.begin();
    this.gate.bind();
  }

  private armDeadline(deadlineAt: number): void {
    this.timeout = setTimeout(() => void this.destroy('timeout'), Math.max(0, deadlineAt - Date.now()));
  }

  /**
   * Resolves once the supervisor waits for its bootstrap and, on a desktop, the browser container
   * answers (the display, window manager, Chromium and VNC up): a pool entry is claimable then.
   */
  async waitUntilReady(): Promise<void> {
    await this.gate.waitUntilAsked(this.id, this.exited);
    await this.parts.desktopReady;
  }

  /**
   * A pool entry that is ready gets the default CPU weight back on its containers (one engine call
   * each, part of the entry's start): an idle entry takes no CPU, and its claimed run must not
   * start at a lower weight than a cold one, nor wait for an engine call to raise it.
   */
  async endWarming(): Promise<void> {
    if (this.warmingCpuShares === undefined) return;
    await this.parts.restoreCpuShares();
  }

  onEvent(listener: EventListener): () => void {
    return this.events.on(listener);
  }

  /** What the agent waits for, if anything: a takeover first, then a new credential. */
  private showLiveState(): void {
    if (!['running', 'awaiting_takeover', 'awaiting_credentials'].includes(this.currentState)) return;
    if (this.takeoverOpen) this.setState('awaiting_takeover');
    else this.setState(this.waitingForCredentials > 0 ? 'awaiting_credentials' : 'running');
  }

  private livePhase(): LivePhase {
    if (this.ending || this.cleaned || this.currentState === 'exited' || this.currentState === 'failed')
      return 'ended';
    return this.agentStarted ? 'running' : 'starting';
  }

  /**
   * A new credential for one connection while the agent runs (rotation, or re-authorising a broken
   * one). Validated like a create's; ValidationError, E_SANDBOX_ENDED, E_SANDBOX_STARTING or
   * E_CREDENTIAL_DELIVERY_FAILED (the old files intact) otherwise.
   */
  updateCredential(connectionId: string, credential: unknown): Promise<{ restored: boolean }> {
    return this.live.update(connectionId, credential);
  }

  /** Removes one connection's credential and files while the agent runs; idempotent. */
  removeCredential(connectionId: string): Promise<void> {
    return this.live.remove(connectionId);
  }

  private setState(state: SandboxState): void {
    if (this.currentState === state) return;
    this.currentState = state;
    this.events.emit({ type: 'state', state });
  }

  start(options: { signal?: AbortSignal } = {}): Promise<void> {
    // The first start of a claimed sandbox says whether it was warm; a warm one runs already.
    if (this.gate.isOpen && !this.announced) {
      this.announced = true;
      this.events.emit({ type: 'claimed', warm: this.warm });
      if (this.starting) this.events.emit({ type: 'state', state: this.currentState });
    }
    if (!this.starting && !this.deps.pooled) this.runStart = this.deps.startsFirst?.begin();
    this.starting ??= this.provision(options);
    return this.starting;
  }

  private async provision(options: { signal?: AbortSignal }): Promise<void> {
    const { runtime, stateDir, logger } = this.deps;
    let drained: Promise<unknown> = Promise.resolve();
    try {
      const container = await provisionContainer(
        {
          sandboxId: this.id,
          runtime,
          stateDir,
          logger,
          options: this.options,
          cpuShares: this.warmingCpuShares,
          network: this.network,
          browser: this.browser,
          handlers: this.ctxHandlers(),
          keep: this.parts,
          beforeStart: (output, agentStart) => {
            // A pool entry's output is relayed from its claim on (the streams buffer until then), so
            // that it passes through the run's masking.
            drained = this.gate.bound.then(() =>
              relayOutput(output, this.credentials, (stream, text) => this.log(stream, text)),
            );
            // Fixed before the container starts: the supervisor may ask for its bootstrap (and the
            // deadline in it) before the engine's answer to start() reaches us. A pool entry's is
            // fixed at its claim.
            if (!this.deps.pooled) this.deadlineAt = Date.now() + this.options.timeoutMs;
            // The browser container joins the agent's network namespace once it runs; the bootstrap
            // (and with it the agent) waits until the browser answers.
            if (this.options.desktop) this.startDesktop(agentStart);
          },
        },
        options,
      );
      logger.info({ containerId: container.id }, 'sandbox running');
      this.setState('running');
      if (this.deadlineAt !== undefined) this.armDeadline(this.deadlineAt);
      this.finished = this.watch(container, drained);
    } catch (error) {
      const failure = toGrexalError(error);
      await this.cleanUp();
      this.fail(failure);
      throw failure;
    }
  }

  private startDesktop(agentStart: Promise<void>): void {
    const { runtime, stateDir, logger, browserImage: image } = this.deps;
    this.parts.startDesktop({
      sandboxId: this.id,
      options: this.options,
      agentStart,
      deps: { runtime, stateDir, logger, image, cpuShares: this.warmingCpuShares },
      ended: () => this.cleaned !== undefined,
      onFailure: (failure) =>
        this.events.emit({ type: 'error', code: failure.code, message: failure.message }),
    });
  }

  /** A pool entry's CPU weight while it starts (SandboxDeps.warmingCpuShares). */
  private get warmingCpuShares(): number | undefined {
    return this.deps.pooled ? this.deps.warmingCpuShares : undefined;
  }

  get networkPolicy(): NetworkPolicy {
    return this.network.policy;
  }

  /** Replaces the policy of a running sandbox for its next connections; validated first. */
  setNetworkPolicy(input: unknown): Promise<NetworkPolicy> {
    const container = this.parts.container;
    const live = container && this.finished && !this.ending;
    return this.network.setPolicy(input, live ? () => container.pid() : undefined);
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
      await outputDrained(drained, status);
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

  private exitOf(status: ExitStatus, exitedAt: number): SandboxExit {
    const { exit, engineError: error } = classifyExit(status, exitedAt, {
      ending: this.ending?.reason,
      deadlineAt: this.deadlineAt,
    });
    if (error) {
      // The runner logs the loss once; the event and the exit carry it for this sandbox.
      this.deps.logger.info({ code: error.code }, 'the engine ended the sandbox');
      this.events.emit({ type: 'error', code: error.code, message: error.message });
    }
    return exit;
  }

  /** Output can overtake the engine's answer to start(): the sandbox runs once it speaks. */
  private log(stream: OutputStream, text: string): void {
    if (this.currentState === 'starting') this.setState('running');
    this.runStart?.end();
    mark(`first ${stream}`);
    this.events.emit({ type: 'log', stream, text });
  }

  private ctxHandlers(): CtxHandlers {
    return createCtxHandlers({
      sandboxId: this.id,
      logger: this.deps.logger,
      takeovers: this.deps.takeovers,
      parts: this.parts,
      gate: this.gate,
      network: this.network,
      live: this.live,
      browser: this.browser,
      options: () => this.options,
      credentials: () => this.credentials,
      deadlineAt: () => this.deadlineAt,
      policyApplied: () => this.policyApplied,
      desktopReady: () => this.parts.desktopReady,
      agentStarted: () => {
        this.agentStarted = true;
        this.runStart?.spawned();
      },
      exitTurn: () => this.exitTurn(),
      takeoverOpen: {
        isOpen: () => this.takeoverOpen,
        set: (open) => {
          this.takeoverOpen = open;
          this.showLiveState();
        },
      },
    });
  }

  /** The agent has ended: its container goes once the runs starting have started (StartsFirst). */
  private exitTurn(): Promise<void> {
    this.runStart?.end();
    if (this.ending || !this.deps.startsFirst) return Promise.resolve();
    // Gone well before its deadline, so that a run that ended in time is not told a timeout.
    const untilDeadline = (this.deadlineAt ?? Number.POSITIVE_INFINITY) - Date.now() - DEADLINE_MARGIN_MS;
    return this.deps.startsFirst.turn(untilDeadline);
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
      // Calls waiting for a new credential answer `broken` ("the sandbox is ending") now, while the
      // agent can still hear it in its stop grace, rather than losing their socket.
      this.credentials?.dispose();
      // A frozen agent would take no signal: thaw it first.
      await this.parts.desktop?.thaw();
      // The agent gets its grace period; Docker's own kill comes a second later.
      const stopped = this.parts.container
        ?.stop(this.options.stopTimeoutMs + 1_000)
        .catch((error: unknown) => {
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
      this.runStart?.end();
      this.deps.takeovers?.cancelAllFor(this.id);
      const results = await this.parts.remove(this.network, this.browser);
      this.credentials?.dispose();
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
