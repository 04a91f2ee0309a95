/**
 * The runner instance's one nftables table. Every sandbox's host-side interface joins the set
 * `sandboxes` (each element commented with its sandbox id); the chains below apply to members only:
 *   - TCP over IPv4 is redirected to the runner's proxy on the interface's own address, DNS to its
 *     resolver; nothing else reaches the host (rejected, so clients fail at once rather than hang);
 *   - nothing is forwarded from or to a sandbox: other sandboxes, the host's networks and Docker's
 *     bridges are unreachable by construction, and UDP (QUIC included) never leaves;
 *   - IPv6 is rejected outright (sandboxes get no IPv6 address; this also closes link-local).
 * Other runners' tables match their own sets only, so runners on one host never meet.
 */
import { exec } from './exec.ts';

export const PROXY_PORT = 15_001;
export const DNS_PORT = 53;
const TABLE_PREFIX = 'grexal_';

/**
 * `grexal_<pid>_<start time>_<n>`: the runner instance, and which of its managers (tests run
 * several runners in one process, and one's table must never replace another's).
 */
export function tableName(instanceId: string, seq: number): string {
  const instance = instanceId.slice(instanceId.indexOf('/') + 1).replace(/[^A-Za-z0-9]/g, '_');
  return `${TABLE_PREFIX}${instance}_${seq}`;
}

const quote = (text: string) => `"${text.replace(/["\\\n]/g, '_')}"`;

export function tableScript(table: string, instanceId: string): string {
  return `table inet ${table} {
  comment ${quote(`grexal runner=${instanceId}`)}
  set sandboxes {
    type ifname
    comment ${quote('host ends of sandbox veth pairs')}
  }
  chain nat_prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname @sandboxes meta nfproto ipv4 meta l4proto tcp redirect to :${PROXY_PORT}
    iifname @sandboxes meta nfproto ipv4 udp dport ${DNS_PORT} redirect to :${DNS_PORT}
  }
  chain filter_input {
    type filter hook input priority filter; policy accept;
    iifname @sandboxes meta nfproto ipv4 tcp dport ${PROXY_PORT} ct status dnat accept
    iifname @sandboxes meta nfproto ipv4 udp dport ${DNS_PORT} accept
    iifname @sandboxes meta l4proto tcp reject with tcp reset
    iifname @sandboxes reject with icmpx admin-prohibited
  }
  chain filter_forward {
    type filter hook forward priority filter; policy accept;
    iifname @sandboxes meta l4proto tcp reject with tcp reset
    iifname @sandboxes reject with icmpx admin-prohibited
    oifname @sandboxes drop
  }
  chain filter_output {
    type filter hook output priority filter; policy accept;
    oifname @sandboxes meta nfproto ipv6 drop
  }
}
`;
}

export interface NftTable {
  readonly name: string;
  add(ifname: string, sandboxId: string): Promise<void>;
  remove(ifname: string): Promise<void>;
  /** Removes the table; its set and every rule go with it. */
  drop(): Promise<void>;
}

export async function createTable(instanceId: string, seq: number): Promise<NftTable> {
  const name = tableName(instanceId, seq);
  // `add table` then `delete table` then the full script: whatever holds the name (nothing
  // should: pid, start time and sequence are in it) is replaced whole instead of merged.
  await exec('nft', ['-f', '-'], {
    input: `add table inet ${name}\ndelete table inet ${name}\n${tableScript(name, instanceId)}`,
  });
  return {
    name,
    add: async (ifname, sandboxId) => {
      await exec('nft', ['-f', '-'], {
        input: `add element inet ${name} sandboxes { ${quote(ifname)} comment ${quote(`sandbox=${sandboxId}`)} }\n`,
      });
    },
    remove: async (ifname) => {
      await exec('nft', ['-f', '-'], {
        input: `delete element inet ${name} sandboxes { ${quote(ifname)} }\n`,
      }).catch(() => {});
    },
    drop: async () => {
      await exec('nft', ['-f', '-'], { input: `delete table inet ${name}\n` }).catch(() => {});
    },
  };
}

interface NftListing {
  nftables: { table?: { family: string; name: string } }[];
}

/**
 * Tables of grexal runners on this host and the runner instance each belongs to, read back from
 * the name (`grexal_<pid>_<start time>`): nft 1.0's JSON listing drops table comments, and a
 * table is local to its host, so the host part of the instance is this host's.
 */
export async function listRunnerTables(host: string): Promise<{ name: string; instanceId?: string }[]> {
  const listing = JSON.parse(await exec('nft', ['-j', 'list', 'tables', 'inet'])) as NftListing;
  return listing.nftables
    .flatMap((entry) => (entry.table ? [entry.table] : []))
    .filter((table) => table.name.startsWith(TABLE_PREFIX))
    .map((table) => {
      const match = /^grexal_(\d+)_(\d+)_\d+$/.exec(table.name);
      return { name: table.name, instanceId: match ? `${host}/${match[1]}-${match[2]}` : undefined };
    });
}

export async function deleteTable(name: string): Promise<void> {
  await exec('nft', ['delete', 'table', 'inet', name]).catch(() => {});
}
