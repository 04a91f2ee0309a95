/**
 * The Linux implementation of NetworkManager: per sandbox a veth pair into its namespace, the
 * runner's nftables table, and an in-process proxy and resolver on the host end's address.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { GrexalError } from '../errors.ts';
import { OriginalDestinations } from './ct-lookup.ts';
import type { DangerousDnsOverride } from './events.ts';
import { ExecFailure } from './exec.ts';
import type { NetworkManager, PreparedNetwork, PrepareOptions, SandboxNetwork } from './manager.ts';
import { UnwiredNetwork } from './manager.ts';
import { AnsweredNames } from './names.ts';
import {
  createTable,
  DNS_PORT,
  deleteTable,
  listRunnerTables,
  type NftTable,
  PROXY_PORT,
  tableName,
} from './nft-table.ts';
import type { NetworkPolicy } from './policy.ts';
import { startProxy } from './proxy.ts';
import { startResolver } from './resolver.ts';
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
  /** This manager's table: one per manager, so runners sharing a process never share one. */
  readonly tableName: string;
  private readonly seq = nextSeq++;
  private readonly originals = new OriginalDestinations();

  constructor(private readonly options: HostNetworkOptions) {
    this.tableName = tableName(options.instanceId, this.seq);
  }

  private ensureTable(): Promise<NftTable> {
    this.table ??= createTable(this.options.instanceId, this.seq).catch((error: unknown) => {
      this.table = undefined;
      throw error;
    });
    return this.table;
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
      this.originals.warm();
      const table = await this.ensureTable();
      const link = await createLink({
        sandboxId: options.sandboxId,
        instanceId: this.options.instanceId,
        range: this.options.linkRange,
      });
      cleanup.push(link.remove);
      let policy: NetworkPolicy = options.policy;
      const shared = {
        address: link.hostAddress,
        policy: () => policy,
        names: new AnsweredNames(),
        onEvent: options.onEvent,
        override: this.options.dangerouslyOverrideDns,
      };
      const [resolver, proxy] = await Promise.all([
        startResolver({ ...shared, port: DNS_PORT }),
        startProxy({
          ...shared,
          port: PROXY_PORT,
          sandboxAddress: link.sandboxAddress,
          lookup: (tuple) => this.originals.lookup(tuple),
        }),
      ]);
      cleanup.push(resolver.close, proxy.close);
      await table.add(link.hostIf, options.sandboxId);
      cleanup.push(() => table.remove(link.hostIf));
      const network: SandboxNetwork = {
        get policy() {
          return policy;
        },
        setPolicy: (next) => {
          policy = next;
        },
        close: undo,
      };
      return {
        attach: async (pid) => {
          await link.moveInto(pid).catch(async (error: unknown) => {
            await undo();
            throw translate(error);
          });
          this.options.logger.debug(
            { sandboxId: options.sandboxId, hostIf: link.hostIf, address: link.sandboxAddress },
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
    for (const link of await listLinks()) {
      if (!dead(link.instanceId)) continue;
      await removeLink(link.hostIf).catch(() => {});
      reaped.push(`link:${link.hostIf}`);
    }
    return reaped;
  }

  async close(): Promise<void> {
    const table = await this.table?.catch(() => undefined);
    this.table = undefined;
    this.originals.close();
    await table?.drop();
  }
}
