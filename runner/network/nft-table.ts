/**
 * The runner instance's one nftables table. Every sandbox's host-side interface joins the set
 * `sandboxes` (each element commented with its sandbox id); the chains below apply to members only:
 *   - TCP over IPv4 to a destination the sandbox's policy already allows (its fast-path sets,
 *     filled by its resolver's answers and its CIDR rules; or any public address under `public`)
 *     is marked and forwarded by the kernel, masqueraded; denied ranges, the host's own addresses
 *     and test-redirected addresses are never forwarded, whatever a set holds;
 *   - every other TCP connection is redirected to the runner's proxy on the interface's own
 *     address, which decides it, and DNS to its resolver; nothing else reaches the host (rejected,
 *     so clients fail at once rather than hang);
 *   - nothing else is forwarded from or to a sandbox: other sandboxes, the host's networks and
 *     Docker's bridges are unreachable, and UDP (QUIC included) never leaves;
 *   - IPv6 is rejected outright (sandboxes get no IPv6 address; this also closes link-local).
 * Other runners' tables match their own sets only, so runners on one host never meet.
 */
import { deniedRanges } from './denied.ts';
import { exec } from './exec.ts';
import type { FastElement } from './fast-path.ts';
import { batched } from './nft-batch.ts';
import { runNft } from './nft-run.ts';
import { DEFAULT_LINK_RANGE } from './veth.ts';

export const PROXY_PORT = 15_001;
export const DNS_PORT = 53;
/** The conntrack mark of a flow the kernel forwards (ASCII "gx", then 1). */
export const FAST_MARK = 0x67780001;
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

const deniedV4 = () =>
  deniedRanges()
    .filter((d) => d.range.family === 4)
    .map((d) => d.range.text);

export interface TableOptions {
  /** Addresses the test-only override redirects: the proxy must dial them, never the kernel. */
  proxied?: readonly string[];
  /**
   * The sandboxes' link range: never forwarded to, even when configured outside the denied
   * ranges (the default, 10.231.0.0/16, is inside 10/8 already).
   */
  linkRange?: string;
}

export function tableScript(table: string, instanceId: string, options: TableOptions = {}): string {
  const proxied = options.proxied?.length ? `\n    elements = { ${options.proxied.join(', ')} }` : '';
  const links = options.linkRange ?? DEFAULT_LINK_RANGE;
  return `table inet ${table} {
  comment ${quote(`grexal runner=${instanceId}`)}
  set sandboxes {
    type ifname
    comment ${quote('host ends of sandbox veth pairs')}
  }
  set denied4 {
    type ipv4_addr
    flags interval
    comment ${quote('always denied, whatever a fast-path set holds')}
    elements = { ${deniedV4().join(', ')} }
  }
  set proxied4 {
    type ipv4_addr
    comment ${quote('test-only override addresses the proxy dials elsewhere')}${proxied}
  }
  map fastpaths {
    type ifname : verdict
    comment ${quote('host end -> the chain of its fast-path sets')}
  }
  chain nat_prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname @sandboxes meta nfproto ipv4 meta l4proto tcp ip daddr != @denied4 ip daddr != ${links} ip daddr != @proxied4 fib daddr type != local iifname vmap @fastpaths
    iifname @sandboxes meta nfproto ipv4 meta l4proto tcp redirect to :${PROXY_PORT}
    iifname @sandboxes meta nfproto ipv4 udp dport ${DNS_PORT} redirect to :${DNS_PORT}
  }
  chain nat_postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct mark ${hex(FAST_MARK)} masquerade
  }
  chain filter_input {
    type filter hook input priority filter; policy accept;
    iifname @sandboxes meta nfproto ipv4 tcp dport ${PROXY_PORT} ct status dnat accept
    iifname @sandboxes meta nfproto ipv4 udp dport ${DNS_PORT} accept
    iifname @sandboxes meta l4proto tcp reject with tcp reset
    iifname @sandboxes reject with icmpx admin-prohibited
  }
  # A fast-path connection was judged at its first packet (nat, then the checks below): every
  # later packet, both ways, is accepted by its mark alone, with no set looked up.
  chain filter_forward {
    type filter hook forward priority filter; policy accept;
    ct mark ${hex(FAST_MARK)} ct state established,related accept
    iifname @sandboxes ip daddr @denied4 reject with icmpx admin-prohibited
    iifname @sandboxes oifname != @sandboxes ct mark ${hex(FAST_MARK)} accept
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

function hex(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** A sandbox's fast path: what its chain accepts, by the mode of its policy. */
export type FastMode = 'public' | 'allow' | 'off';

/** Names of one sandbox's objects, derived from its host end (unique on the host). */
export function sandboxObjects(ifname: string) {
  const id = ifname.replace(/[^A-Za-z0-9]/g, '_');
  return {
    chain: `sb_${id}`,
    counter: `fast_${id}`,
    any: `any_${id}`,
    port: `port_${id}`,
    cidr: `cidr_${id}`,
    cidrPort: `cidrport_${id}`,
  };
}

function element(e: FastElement, timeoutS?: number): string {
  const key = e.port === undefined ? e.address : `${e.address} . ${e.port}`;
  return timeoutS === undefined ? key : `${key} timeout ${timeoutS}s`;
}

const forSet = (e: FastElement, names: ReturnType<typeof sandboxObjects>, cidr: boolean) =>
  cidr ? (e.port === undefined ? names.cidr : names.cidrPort) : e.port === undefined ? names.any : names.port;

/** The chain's rules and the CIDR elements for a mode: used at add and on every policy change. */
export function chainScript(table: string, ifname: string, mode: FastMode, cidrs: FastElement[]): string {
  const o = sandboxObjects(ifname);
  const accept = `counter name ${o.counter} ct mark set ${hex(FAST_MARK)} accept`;
  const lines = [`flush chain inet ${table} ${o.chain}`];
  for (const set of [o.any, o.port, o.cidr, o.cidrPort]) lines.push(`flush set inet ${table} ${set}`);
  if (mode === 'public') lines.push(`add rule inet ${table} ${o.chain} ${accept}`);
  if (mode === 'allow') {
    lines.push(
      `add rule inet ${table} ${o.chain} ip daddr @${o.any} ${accept}`,
      `add rule inet ${table} ${o.chain} ip daddr . tcp dport @${o.port} ${accept}`,
      `add rule inet ${table} ${o.chain} ip daddr @${o.cidr} ${accept}`,
      `add rule inet ${table} ${o.chain} ip daddr . tcp dport @${o.cidrPort} ${accept}`,
    );
    for (const e of cidrs) lines.push(`add element inet ${table} ${forSet(e, o, true)} { ${element(e)} }`);
  }
  return `${lines.join('\n')}\n`;
}

export function addScript(table: string, ifname: string, sandboxId: string, fast: boolean): string {
  const o = sandboxObjects(ifname);
  const lines = [
    `add element inet ${table} sandboxes { ${quote(ifname)} comment ${quote(`sandbox=${sandboxId}`)} }`,
  ];
  if (fast) {
    lines.push(
      `add counter inet ${table} ${o.counter}`,
      `add set inet ${table} ${o.any} { type ipv4_addr; flags timeout; }`,
      `add set inet ${table} ${o.port} { type ipv4_addr . inet_service; flags timeout; }`,
      `add set inet ${table} ${o.cidr} { type ipv4_addr; flags interval; }`,
      `add set inet ${table} ${o.cidrPort} { type ipv4_addr . inet_service; flags interval; }`,
      `add chain inet ${table} ${o.chain}`,
      `add element inet ${table} fastpaths { ${quote(ifname)} : jump ${o.chain} }`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function removeScript(table: string, ifname: string, fast: boolean): string {
  const o = sandboxObjects(ifname);
  const lines = [`delete element inet ${table} sandboxes { ${quote(ifname)} }`];
  if (fast) {
    lines.push(
      `delete element inet ${table} fastpaths { ${quote(ifname)} }`,
      `delete chain inet ${table} ${o.chain}`,
      ...[o.any, o.port, o.cidr, o.cidrPort].map((set) => `delete set inet ${table} ${set}`),
      `delete counter inet ${table} ${o.counter}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Adds answered elements or renews their timeout: `add` alone keeps an existing element's old
 * timeout, and `delete` fails on a missing one, so add, delete, add, in one transaction.
 */
export function answerScript(
  table: string,
  ifname: string,
  elements: FastElement[],
  timeoutS: number,
): string {
  const o = sandboxObjects(ifname);
  const lines: string[] = [];
  for (const e of elements) {
    const set = `inet ${table} ${forSet(e, o, false)}`;
    const timed = `{ ${element(e, timeoutS)} }`;
    lines.push(
      `add element ${set} ${timed}`,
      `delete element ${set} { ${element(e)} }`,
      `add element ${set} ${timed}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export interface NftTable {
  readonly name: string;
  /** Whether allowed flows are forwarded by the kernel (see HostNetworkOptions.fastPath). */
  readonly fast: boolean;
  add(ifname: string, sandboxId: string, mode: FastMode, cidrs: FastElement[]): Promise<void>;
  setMode(ifname: string, mode: FastMode, cidrs: FastElement[]): Promise<void>;
  addAnswers(ifname: string, elements: FastElement[], timeoutS: number): Promise<void>;
  remove(ifname: string): Promise<void>;
  /** Removes the table; its sets and every rule go with it. */
  drop(): Promise<void>;
}

/** One transaction per burst of scripts (nft-batch.ts). */
const nft = batched(runNft);

export async function createTable(
  instanceId: string,
  seq: number,
  options: TableOptions & { fast: boolean },
): Promise<NftTable> {
  const name = tableName(instanceId, seq);
  // `add table` then `delete table` then the full script: whatever holds the name (nothing
  // should: pid, start time and sequence are in it) is replaced whole instead of merged.
  await nft(`add table inet ${name}\ndelete table inet ${name}\n${tableScript(name, instanceId, options)}`);
  const { fast } = options;
  return {
    name,
    fast,
    add: async (ifname, sandboxId, mode, cidrs) => {
      // One transaction: the sandbox joins with its chain already filled, or not at all.
      await nft(
        addScript(name, ifname, sandboxId, fast) + (fast ? chainScript(name, ifname, mode, cidrs) : ''),
      );
    },
    setMode: async (ifname, mode, cidrs) => {
      if (fast) await nft(chainScript(name, ifname, mode, cidrs));
    },
    addAnswers: async (ifname, elements, timeoutS) => {
      if (fast && elements.length > 0) await nft(answerScript(name, ifname, elements, timeoutS));
    },
    remove: async (ifname) => {
      await nft(removeScript(name, ifname, fast)).catch(() => {});
    },
    drop: async () => {
      await nft(`delete table inet ${name}\n`).catch(() => {});
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
