/**
 * The Linux implementation of NetworkManager: per sandbox a veth pair into its namespace, the
 * runner's nftables table, and an in-process proxy and resolver on the host end's address.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { GrexalError } from '../errors.ts';
import { python3 } from '../host/python.ts';
import { mark } from '../timings.ts';
import { lookupOriginal } from './ct-lookup.ts';
import type { DangerousDnsOverride } from './events.ts';
import { ExecFailure } from './exec.ts';
import {
  addForwardAccept,
  type ForwardAccept,
  listForwardAccepts,
  removeForwardAccept,
} from './forward-accept.ts';
import { isHostAddress } from './host-addresses.ts';
import { KernelFlows } from './kernel-flows.ts';
import { LinkHelper } from './link-helper.ts';
import type { NetworkManager, PreparedNetwork, PrepareOptions, SandboxNetwork } from './manager.ts';
import { UnwiredNetwork } from './manager.ts';
import { AnsweredNames } from './names.ts';
import {
  createTable,
  DNS_PORT,
  deleteTable,
  FAST_MARK,
  listRunnerTables,
  type NftTable,
  PROXY_PORT,
  tableName,
} from './nft-table.ts';
import type { NetworkPolicy } from './policy.ts';
import { startProxy } from './proxy.ts';
import { startResolver } from './resolver.ts';
import { SandboxFastPath } from './sandbox-fast-path.ts';
import { createLink, listLinks, removeLink } from './veth.ts';

export interface HostNetworkOptions {
  instanceId: string;
  logger: Logger;
  /** IPv4 range (at most /28) for sandbox links, one /30 each. Default 10.231.0.0/16. */
  linkRange?: string;
  /** Whether a runner instance still runs (the runtime's own liveness test). */
  isInstanceAlive: (instanceId: string) => boolean;
  /** Tests only: see DangerousDnsOverride. */
  dangerouslyOverrideDns?: DangerousDnsOverride;
  /** Whether links are moved by the python3 helper instead of spawned `ip`/`nsenter`. Default true. */
  linkHelper?: boolean;
  /**
   * Whether allowed TCP flows are forwarded by the kernel instead of relayed by the proxy
   * (docs/network.md, "Fast path"). Default true; off anyway when the host does not forward
   * IPv4 (net.ipv4.ip_forward=0, left as the operator set it) or has no python3.
   */
  fastPath?: boolean;
}

/**
 * Whether this host can carry the fast path: forwarding on, python3 for conntrack's events (an
 * executable found, not a probe spawned: the probe cost a python start on every cold run's path).
 */
async function fastPathAvailable(): Promise<boolean> {
  const forwarding = await readFile('/proc/sys/net/ipv4/ip_forward', 'utf8').catch(() => '0');
  return forwarding.trim() === '1' && python3() !== undefined;
}

function translate(error: unknown): GrexalError {
  if (error instanceof GrexalError) return error;
  if (error instanceof ExecFailure && /Operation not permitted|Permission denied/.test(error.stderr)) {
    return new GrexalError(
      'E_NETWORK_UNAVAILABLE',
      `The runner may not configure the host's network (${error.command}): run it as root, or give the sandbox network "none".`,
      { cause: error },
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new GrexalError('E_NETWORK_SETUP_FAILED', `Wiring the sandbox's network failed: ${message}`, {
    cause: error,
  });
}

let nextSeq = 0;

export class HostNetworkManager implements NetworkManager {
  private table?: Promise<NftTable>;
  private forwardAccept?: ForwardAccept;
  private readonly flows = new KernelFlows(FAST_MARK, {
    onLoss: () =>
      this.options.logger.warn(
        'conntrack events were dropped under a burst: kernel-forwarded connections that opened and closed meanwhile are not in the audit',
      ),
  });
  private readonly mover?: LinkHelper;
  /** Override addresses with a dialHost: the proxy dials them elsewhere, the kernel never. */
  private readonly proxied: Set<string>;
  /** This manager's table: one per manager, so runners sharing a process never share one. */
  readonly tableName: string;
  private readonly seq = nextSeq++;

  constructor(private readonly options: HostNetworkOptions) {
    this.tableName = tableName(options.instanceId, this.seq);
    if (options.linkHelper !== false) this.mover = new LinkHelper();
    this.proxied = new Set(
      Object.values(options.dangerouslyOverrideDns ?? {}).flatMap((e) => (e.dialHost ? [e.address] : [])),
    );
  }

  private ensureTable(): Promise<NftTable> {
    this.table ??= this.createTable().catch((error: unknown) => {
      this.table = undefined;
      throw error;
    });
    return this.table;
  }

  private async createTable(): Promise<NftTable> {
    const fast = this.options.fastPath !== false && (await fastPathAvailable());
    mark('net: fast path probed');
    if (fast) {
      // Byte counts of forwarded flows come from conntrack, which counts only when told to
      // (host-wide, for new connections; left on, since other tables may rely on it too).
      await writeFile('/proc/sys/net/netfilter/nf_conntrack_acct', '1');
      this.flows.warm();
    }
    const table = await createTable(this.options.instanceId, this.seq, {
      fast,
      proxied: [...this.proxied],
      linkRange: this.options.linkRange,
    });
    mark('net: table made');
    if (fast) {
      this.forwardAccept = await addForwardAccept(FAST_MARK, table.name).catch(async (error: unknown) => {
        await table.drop();
        throw error;
      });
    }
    return table;
  }

  async prepare(options: PrepareOptions): Promise<PreparedNetwork> {
    if (options.policy.mode === 'none') {
      return { attach: async () => new UnwiredNetwork(options.policy), close: async () => {} };
    }
    const cleanup: (() => Promise<void>)[] = [];
    let undone: Promise<void> | undefined;
    const undo = () => {
      undone ??= (async () => {
        for (const step of cleanup.reverse()) await step().catch(() => {});
      })();
      return undone;
    };
    if (process.getuid?.() !== 0) {
      throw new GrexalError(
        'E_NETWORK_UNAVAILABLE',
        `Sandbox networking needs the runner to run as root (for ip and nft); give the sandbox network "none", or run the runner as root.`,
      );
    }
    try {
      this.mover?.warm();
      // The table first, then the slot: whoever finds a runner's link finds its table (the
      // reaping of a killed runner relies on it). Both run while the engine starts the container.
      const table = await this.ensureTable();
      const link = await createLink({
        sandboxId: options.sandboxId,
        instanceId: this.options.instanceId,
        range: this.options.linkRange,
        mover: this.mover,
      });
      cleanup.push(link.remove);
      mark('net: link lock made');
      let policy: NetworkPolicy = options.policy;
      const shared = {
        address: link.hostAddress,
        policy: () => policy,
        names: new AnsweredNames(),
        onEvent: options.onEvent,
        override: this.options.dangerouslyOverrideDns,
      };
      const fastPath = new SandboxFastPath(
        table,
        link.hostIf,
        shared,
        { isHostAddress: (address) => isHostAddress(address), proxiedAddresses: this.proxied },
        options.onEvent,
      );
      const [resolver, proxy] = await Promise.all([
        startResolver({
          ...shared,
          port: DNS_PORT,
          onAnswer: table.fast
            ? (name, addresses, ttl) => fastPath.answered(name, addresses, ttl)
            : undefined,
        }),
        startProxy({
          ...shared,
          port: PROXY_PORT,
          sandboxAddress: link.sandboxAddress,
          lookup: lookupOriginal,
        }),
      ]);
      cleanup.push(resolver.close, proxy.close);
      mark('net: resolver, proxy');
      await fastPath.join(options.sandboxId);
      mark('net: fast path joined');
      cleanup.push(() => fastPath.remove());
      if (table.fast) {
        this.flows.watch(link.sandboxAddress, (flow) => fastPath.flowEnded(flow));
        // Before the table: the sandbox's forwarded flows are reported and deleted while its
        // chain is still there.
        cleanup.push(() => this.flows.unwatch(link.sandboxAddress));
      }
      const network: SandboxNetwork = {
        get policy() {
          return policy;
        },
        setPolicy: (next) => {
          policy = next;
          return fastPath.policyChanged().catch((error: unknown) => {
            throw translate(error);
          });
        },
        close: undo,
      };
      return {
        attach: async (pid) => {
          const timing = await link.moveInto(pid, table.fast).catch(async (error: unknown) => {
            await undo();
            throw translate(error);
          });
          this.options.logger.debug(
            {
              sandboxId: options.sandboxId,
              hostIf: link.hostIf,
              address: link.sandboxAddress,
              pairMs: Math.round(timing.pairMs),
              helper: timing.helper,
            },
            'sandbox network wired',
          );
          return network;
        },
        close: undo,
      };
    } catch (error) {
      await undo();
      throw translate(error);
    }
  }

  async reapLeftovers(): Promise<string[]> {
    const reaped: string[] = [];
    // Only what names a runner that is gone: a name or alias this version cannot read is left alone.
    const dead = (instanceId: string | undefined) =>
      instanceId !== undefined &&
      instanceId !== this.options.instanceId &&
      !this.options.isInstanceAlive(instanceId);
    for (const table of await listRunnerTables(hostname())) {
      if (!dead(table.instanceId)) continue;
      await deleteTable(table.name);
      reaped.push(`nft:${table.name}`);
    }
    const live = new Set((await listRunnerTables(hostname())).map((table) => table.name));
    for (const rule of await listForwardAccepts()) {
      // Its table is gone (reaped above, or never made): nothing can mark a flow for it.
      if (live.has(rule.table)) continue;
      await removeForwardAccept(rule.chain, rule.args);
      reaped.push(`iptables:${rule.table}`);
    }
    for (const link of await listLinks()) {
      if (!dead(link.instanceId)) continue;
      await removeLink(link.hostIf, this.mover).catch(() => {});
      reaped.push(`link:${link.hostIf}`);
    }
    return reaped;
  }

  async close(): Promise<void> {
    const table = await this.table?.catch(() => undefined);
    this.table = undefined;
    this.flows.close();
    await table?.drop();
    await this.forwardAccept?.remove();
    this.forwardAccept = undefined;
  }
}
