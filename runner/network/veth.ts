/**
 * A sandbox's one link to the host. While the engine creates the container, a placeholder
 * (`gxh<slot>`, a veth pair of its own, carrying nothing) takes the slot and holds the host's address (.1 of the slot's /30), so the
 * sandbox's resolver and proxy can bind to it; its name is the slot's lock (names are unique per
 * namespace, so two runners can never take one slot) and its alias labels it with sandbox and
 * runner. Once the container runs, a veth pair is made with its far end created inside the
 * container's namespace as `eth0` (`gxv<slot>` stays on the host): creating an end there costs
 * ~3 ms, moving a made end there 12-25 ms (the kernel's own cost of a namespace move), and this
 * step is on the start's critical path. Host end and `eth0` are point-to-point: .1 peer .2 and
 * .2 peer .1, default route via .1.
 */
import { randomInt } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { formatAddress, parseCidr } from './address.ts';
import { ExecFailure, exec } from './exec.ts';
import type { LinkHelper } from './link-helper.ts';

/** Default range the runner owns for sandbox links: 16 384 /30 slots. */
export const DEFAULT_LINK_RANGE = '10.231.0.0/16';
/** The slot's lock and address holder (a veth pair of its own that carries nothing). */
const LOCK_PREFIX = 'gxh';
const LOCK_FAR_PREFIX = 'gxs';
/** The veth pair's host end. */
const HOST_PREFIX = 'gxv';
const ATTEMPTS = 8;

/** How long making the pair took, for the debug log. */
export interface MoveTiming {
  pairMs: number;
  /** Whether the helper made it (or spawned tools did). */
  helper: boolean;
}

export interface SandboxLink {
  slot: number;
  /** The veth's host end, where the sandbox's packets arrive (in the nft sets from the start). */
  hostIf: string;
  hostAddress: string;
  sandboxAddress: string;
  /**
   * Makes the pair with `eth0` inside the namespace of `pid`, addressed and routed; `forwarding`:
   * whether the kernel may forward from the host end (the fast path).
   */
  moveInto(pid: number, forwarding: boolean): Promise<MoveTiming>;
  remove(): Promise<void>;
}

export interface CreateLinkOptions {
  sandboxId: string;
  instanceId: string;
  range?: string;
  /**
   * Makes the lock and the pair, and deletes links, without spawning (link-helper.ts); `ip` and
   * `nsenter` are spawned without it.
   */
  mover?: LinkHelper;
}

export function linkAlias(sandboxId: string, instanceId: string): string {
  return `grexal sandbox=${sandboxId} runner=${instanceId}`;
}

function slotAddresses(range: string, slot: number): { host: string; sandbox: string } {
  const cidr = parseCidr(range);
  if ('error' in cidr || cidr.family !== 4) throw new Error(`bad link range ${range}`);
  const base = cidr.base + BigInt(slot * 4);
  return {
    host: formatAddress({ family: 4, value: base + 1n }),
    sandbox: formatAddress({ family: 4, value: base + 2n }),
  };
}

function slotCount(range: string): number {
  const cidr = parseCidr(range);
  if ('error' in cidr || cidr.family !== 4 || cidr.prefix > 28) throw new Error(`bad link range ${range}`);
  return 2 ** (30 - cidr.prefix);
}

/** Deletes a link; one that is not there is not an error. Through `mover` when there is one. */
export async function removeLink(ifname: string, mover?: LinkHelper): Promise<void> {
  if (await mover?.deleteLink(ifname)) return;
  await exec('ip', ['link', 'del', ifname]).catch((error: unknown) => {
    if (!(error instanceof ExecFailure && /Cannot find device/.test(error.stderr))) throw error;
  });
}

/** A slot's lock by `ip`, where there is no helper. */
async function spawnLock(lockIf: string, farIf: string, host: string, alias: string): Promise<void> {
  await exec('ip', ['-batch', '-'], {
    input: [
      // A veth pair whose far end stays down on the host: dummy interfaces are a module
      // some kernels lack, veth is there wherever sandboxes can be wired at all.
      `link add ${lockIf} type veth peer name ${farIf}`,
      `link set ${lockIf} addrgenmode none`,
      `link set ${lockIf} alias "${alias}"`,
      `addr add ${host}/32 dev ${lockIf}`,
      `link set ${lockIf} up`,
    ].join('\n'),
  });
}

/** The pair by spawned tools, where there is no helper: three processes instead of none. */
async function spawnPair(
  hostIf: string,
  pid: number,
  host: string,
  sandbox: string,
  alias: string,
  forwarding: boolean,
) {
  await exec('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(pid)]);
  await hostEndSysctls(hostIf, forwarding);
  await exec('ip', ['-batch', '-'], {
    input: [
      `link set ${hostIf} alias "${alias}"`,
      `addr add ${host} peer ${sandbox}/32 dev ${hostIf}`,
      `link set ${hostIf} up`,
    ].join('\n'),
  });
  await exec('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-batch', '-'], {
    input: [
      `addr add ${sandbox} peer ${host}/32 dev eth0`,
      'link set eth0 up',
      `route add default via ${host}`,
    ].join('\n'),
  });
}

/**
 * No IPv6 on the host end (the sandbox could otherwise reach the host's link-local address), and
 * no forwarding from it unless the fast path needs it: without, should the runner's table ever
 * be flushed, packets from the sandbox still go nowhere but the host end. Before the end is up.
 */
async function hostEndSysctls(hostIf: string, forwarding: boolean): Promise<void> {
  await writeFile(`/proc/sys/net/ipv6/conf/${hostIf}/disable_ipv6`, '1').catch(() => {});
  await writeFile(`/proc/sys/net/ipv4/conf/${hostIf}/forwarding`, forwarding ? '1' : '0');
}

/**
 * Takes a slot: its lock holds the host's address from now on, so that everything but the pair
 * can happen while the container is still being created.
 */
export async function createLink(options: CreateLinkOptions): Promise<SandboxLink> {
  const range = options.range ?? DEFAULT_LINK_RANGE;
  const slots = slotCount(range);
  const alias = linkAlias(options.sandboxId, options.instanceId);
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const slot = randomInt(slots);
    const lockIf = `${LOCK_PREFIX}${slot}`;
    const hostIf = `${HOST_PREFIX}${slot}`;
    const farIf = `${LOCK_FAR_PREFIX}${slot}`;
    const { host, sandbox } = slotAddresses(range, slot);
    // The pair goes first: removing the lock frees the slot for another runner.
    const remove = async () => {
      await removeLink(hostIf, options.mover).catch(() => {});
      await removeLink(lockIf, options.mover);
    };
    try {
      const locked = await options.mover?.makeLock(lockIf, farIf, host, alias);
      if (locked === 'exists') {
        lastError = new Error(`${lockIf} exists: the slot is taken`);
        continue;
      }
      if (!locked) await spawnLock(lockIf, farIf, host, alias);
    } catch (error) {
      lastError = error;
      // The first line failing created nothing; a taken slot is worth another try, a missing
      // tool or permission is not. A later line failing leaves our lock to remove.
      const firstLine = error instanceof ExecFailure && /Command failed -:1\b/.test(error.stderr);
      if (firstLine && /File exists/.test((error as ExecFailure).stderr)) continue;
      if (!firstLine) await removeLink(lockIf, options.mover).catch(() => {});
      throw error;
    }
    const moveInto = async (pid: number, forwarding: boolean): Promise<MoveTiming> => {
      const t0 = performance.now();
      const request = { hostIf, pid, hostAddress: host, sandboxAddress: sandbox, alias, forwarding };
      if (await options.mover?.makePair(request)) return { pairMs: performance.now() - t0, helper: true };
      await spawnPair(hostIf, pid, host, sandbox, alias, forwarding);
      return { pairMs: performance.now() - t0, helper: false };
    };
    return { slot, hostIf, hostAddress: host, sandboxAddress: sandbox, moveInto, remove };
  }
  throw lastError;
}

interface IpLink {
  ifname: string;
  ifalias?: string;
}

/** Sandbox links on this host (locks and host ends), with the sandbox and runner their alias names. */
export async function listLinks(): Promise<
  { hostIf: string; kind: 'lock' | 'veth'; sandboxId?: string; instanceId?: string }[]
> {
  const links = JSON.parse(await exec('ip', ['-j', 'link', 'show'])) as IpLink[];
  return links
    .filter(
      (link) =>
        (link.ifname.startsWith(LOCK_PREFIX) || link.ifname.startsWith(HOST_PREFIX)) &&
        link.ifalias?.startsWith('grexal '),
    )
    .map((link) => ({
      hostIf: link.ifname,
      kind: link.ifname.startsWith(LOCK_PREFIX) ? ('lock' as const) : ('veth' as const),
      sandboxId: /sandbox=(\S+)/.exec(link.ifalias ?? '')?.[1],
      instanceId: /runner=(\S+)/.exec(link.ifalias ?? '')?.[1],
    }));
}
