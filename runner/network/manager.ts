/**
 * What the sandbox lifecycle needs from the network: wire a started container's namespace to the
 * host under a policy, change the policy, remove everything, and reap what dead runners left.
 * `HostNetworkManager` (Linux: veth, nftables, in-process proxy and resolver) is the one
 * implementation; a Kubernetes runtime would map the same calls onto a pod (docs/network.md).
 */
import type { NetworkEvent } from './events.ts';
import type { NetworkPolicy } from './policy.ts';

export interface PrepareOptions {
  sandboxId: string;
  policy: NetworkPolicy;
  onEvent: (event: NetworkEvent) => void;
}

export interface SandboxNetwork {
  readonly policy: NetworkPolicy;
  /**
   * Takes effect for the next connection and the next DNS query; settles once the host's rules
   * follow it (the fast path's sets emptied).
   */
  setPolicy(policy: NetworkPolicy): void | Promise<void>;
  /** Removes everything of this sandbox on the host; safe to call more than once. */
  close(): Promise<void>;
}

/** Everything on the host side, made while the container is created; the move comes after start. */
export interface PreparedNetwork {
  /** Moves the link into the namespace of `pid` (a process inside the started container). */
  attach(pid: number): Promise<SandboxNetwork>;
  /** Removes what was prepared; the same as the attached network's close. */
  close(): Promise<void>;
}

export interface NetworkManager {
  /** For `none` nothing is created (the container's namespace has loopback only). */
  prepare(options: PrepareOptions): Promise<PreparedNetwork>;
  /** Removes tables and interfaces of runner instances that are no longer alive. */
  reapLeftovers(): Promise<string[]>;
  /** Removes this runner's table; call after every sandbox is closed. */
  close(): Promise<void>;
}

/** A sandbox whose policy is `none` from its start: no link, no proxy, nothing to remove. */
export class UnwiredNetwork implements SandboxNetwork {
  constructor(private current: NetworkPolicy) {}

  get policy(): NetworkPolicy {
    return this.current;
  }

  setPolicy(policy: NetworkPolicy): void {
    // Without a link nothing can widen it later; the record still follows what the caller set.
    this.current = policy;
  }

  async close(): Promise<void> {}
}
