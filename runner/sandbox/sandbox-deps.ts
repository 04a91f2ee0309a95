/**
 * What a sandbox is made with: the runner's services it uses (SandboxDeps), and the run bound to
 * a pool entry at its claim (RunBinding).
 */
import type { Logger } from 'pino';
import type { NetworkManager, NetworkPolicy } from '../network/index.ts';
import type { ContainerRuntime } from '../runtime/index.ts';
import type { SandboxBrowser } from './browser-wiring.ts';
import type { ResolvedSandboxOptions } from './options.ts';
import type { SandboxCredentials, SandboxTakeovers } from './ports.ts';
import type { StartsFirst } from './starts-first.ts';

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
  /**
   * A pool entry: started with nothing of a run (the options carry no command, env or timeout;
   * no credentials; a link that refuses every connection). Its bootstrap waits until `claim()`
   * binds the run, once.
   */
  pooled?: boolean;
  /**
   * A pool entry's CPU weight (CpuShares) on each of its containers while it starts: warming it
   * takes only the CPU that live runs leave. `endWarming()` gives them the default back once the
   * entry is ready, before it can be claimed.
   */
  warmingCpuShares?: number;
  /** The browser behind the runner's CDP relay (GREXAL_CDP_URL); grexal dev's local one. */
  browser?: SandboxBrowser;
  /** A desktop sandbox's browser container image. Default grexal/desktop. */
  browserImage?: string;
  /** The runner's: an ended run's container waits while other runs start (bounded). */
  startsFirst?: StartsFirst;
}

/** Everything of one run, bound to a pool entry at its claim. */
export interface RunBinding {
  options: ResolvedSandboxOptions;
  credentials?: SandboxCredentials;
  networkPolicy: NetworkPolicy;
}

/** A pool entry's policy until its claim: linked (so the claim only swaps the policy), nothing allowed. */
export const IDLE_ENTRY_POLICY: NetworkPolicy = { mode: 'allow', rules: [] };
