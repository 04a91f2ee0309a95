/**
 * A sandbox's side of runner/network: the host side is prepared while the container is created,
 * the link moved in once it runs, and the bootstrap waits for that (so the agent never runs
 * unwired). Also the policy in force, replaced by PATCHes.
 */
import {
  type NetworkEvent,
  type NetworkManager,
  type NetworkPolicy,
  type PreparedNetwork,
  parseNetworkPolicy,
  type SandboxNetwork,
  UnwiredNetwork,
} from '../network/index.ts';

export class NetworkWiring {
  private prepared?: PreparedNetwork;
  private network?: SandboxNetwork;
  private current: NetworkPolicy;
  private wired: Promise<void> = Promise.resolve();

  constructor(
    private readonly manager: NetworkManager | undefined,
    private readonly sandboxId: string,
    policy: NetworkPolicy,
    private readonly onEvent: (event: NetworkEvent) => void,
  ) {
    this.current = policy;
  }

  get policy(): NetworkPolicy {
    return this.current;
  }

  /** Settles once the link is in place (or failed); the bootstrap awaits it. */
  get ready(): Promise<void> {
    return this.wired;
  }

  async prepare(): Promise<void> {
    this.prepared = await this.manager?.prepare({
      sandboxId: this.sandboxId,
      policy: this.current,
      onEvent: this.onEvent,
    });
  }

  /** Call before the container starts: wiring follows `started`, `ready` settles after it. */
  wireAfter(started: Promise<void>, pid: () => Promise<number>): Promise<void> {
    this.wired = started.then(() => this.attach(pid));
    this.wired.catch(() => {});
    return this.wired;
  }

  private async attach(pid: () => Promise<number>): Promise<void> {
    if (!this.prepared) return;
    this.network = await this.prepared.attach(await pid());
    // A PATCH that came while the sandbox was starting applies from the first connection.
    this.network.setPolicy(this.current);
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
      this.network?.setPolicy(policy);
    }
    return policy;
  }

  async close(): Promise<void> {
    await Promise.all([this.prepared?.close(), this.network?.close()]);
  }
}
