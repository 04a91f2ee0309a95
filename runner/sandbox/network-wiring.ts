/**
 * A sandbox's side of runner/network: the host side is prepared while the container is created,
 * the link moved in once it runs, and the bootstrap waits for that (so the agent never runs
 * unwired). Also the policy in force, replaced by PATCHes.
 */
import type { Logger } from 'pino';
import { isGrexalError } from '../errors.ts';
import {
  type NetworkEvent,
  type NetworkManager,
  type NetworkPolicy,
  type PreparedNetwork,
  parseNetworkPolicy,
  type SandboxNetwork,
  UnwiredNetwork,
} from '../network/index.ts';
import { mark } from '../timings.ts';

export interface NetworkWiringOptions {
  manager: NetworkManager | undefined;
  sandboxId: string;
  policy: NetworkPolicy;
  /** The policy is the default nobody asked for: see SandboxDeps.networkPolicyImplicit. */
  implicit: boolean;
  logger: Logger;
  onEvent: (event: NetworkEvent) => void;
}

export class NetworkWiring {
  private prepared?: PreparedNetwork;
  private network?: SandboxNetwork;
  private current: NetworkPolicy;
  private wired: Promise<void> = Promise.resolve();

  private readonly manager: NetworkManager | undefined;

  constructor(private readonly options: NetworkWiringOptions) {
    this.manager = options.manager;
    this.current = options.policy;
  }

  get policy(): NetworkPolicy {
    return this.current;
  }

  /**
   * Settles once the link is in place (or failed); the bootstrap awaits it. How long it made
   * the bootstrap wait is logged at debug: the wiring's share of the start's critical path.
   */
  get ready(): Promise<void> {
    const asked = performance.now();
    let settled = false;
    const wired = this.wired
      .finally(() => {
        settled = true;
      })
      .catch(() => {});
    void Promise.resolve().then(() => {
      if (settled) return;
      void wired.then(() =>
        this.options.logger.debug(
          { bootstrapWaitMs: Math.round(performance.now() - asked), mode: this.current.mode },
          'bootstrap waited for the network',
        ),
      );
    });
    return this.wired;
  }

  async prepare(): Promise<void> {
    const { sandboxId, logger } = this.options;
    const started = performance.now();
    try {
      this.prepared = await this.manager?.prepare({
        sandboxId,
        policy: this.current,
        onEvent: (event) => {
          logger.info({ network: event }, 'network');
          this.options.onEvent(event);
        },
      });
    } catch (error) {
      // The default policy on a host that cannot wire: still isolated, only without a way out.
      if (!this.options.implicit || !isGrexalError(error) || error.code !== 'E_NETWORK_UNAVAILABLE')
        throw error;
      logger.warn(
        { err: error },
        'no network for the sandbox: this host cannot enforce a policy, so it runs with none',
      );
      this.current = { mode: 'none' };
    }
    logger.debug({ prepareMs: Math.round(performance.now() - started) }, 'network prepared');
  }

  /** Call before the container starts: wiring follows `started`, `ready` settles after it. */
  wireAfter(started: Promise<void>, pid: () => Promise<number>): Promise<void> {
    this.wired = started.then(() => this.attach(pid));
    this.wired.catch(() => {});
    return this.wired;
  }

  private async attach(pid: () => Promise<number>): Promise<void> {
    if (!this.prepared) return;
    const started = performance.now();
    const found = await pid();
    mark('container pid');
    const pidMs = performance.now() - started;
    this.network = await this.prepared.attach(found);
    mark('link moved in');
    this.options.logger.debug(
      { pidMs: Math.round(pidMs), attachMs: Math.round(performance.now() - started - pidMs) },
      'network attached',
    );
    // A PATCH that came while the sandbox was starting applies from the first connection.
    if (this.network.policy !== this.current) await this.network.setPolicy(this.current);
  }

  /**
   * Replaces the policy for the next connections (open ones keep going). Validated first; a
   * sandbox started with `none` is wired now if the new policy needs a link and `pid` is given.
   */
  async setPolicy(input: unknown, pid?: () => Promise<number>): Promise<NetworkPolicy> {
    const policy = parseNetworkPolicy(input, 'network');
    await this.wired.catch(() => {});
    this.current = policy;
    const unwired = !this.network || this.network instanceof UnwiredNetwork;
    if (unwired && policy.mode !== 'none' && this.manager && pid) {
      await this.prepare();
      await this.attach(pid);
    } else {
      await this.network?.setPolicy(policy);
    }
    return policy;
  }

  async close(): Promise<void> {
    await Promise.all([this.prepared?.close(), this.network?.close()]);
  }
}
