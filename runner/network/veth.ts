/**
 * A sandbox's one link to the host: a veth pair whose host end (`gxh<slot>`) stays in the host's
 * namespace and whose other end (`gxs<slot>`) moves into the container's namespace as `eth0`.
 * Addresses come from a /30 per slot of the runner-owned range: host end .1, sandbox .2, default
 * route via the host end. The interface name is the slot's lock (names are unique per namespace,
 * so two runners can never take one slot) and its alias labels it with sandbox and runner.
 */
import { randomInt } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { formatAddress, parseCidr } from './address.ts';
import { ExecFailure, exec } from './exec.ts';
import type { LinkHelper } from './link-helper.ts';

/** Default range the runner owns for sandbox links: 16 384 /30 slots. */
export const DEFAULT_LINK_RANGE = '10.231.0.0/16';
const HOST_PREFIX = 'gxh';
/** The far end's name until it moves into the container and becomes `eth0`. */
const FAR_PREFIX = 'gxs';
const ATTEMPTS = 8;

export interface SandboxLink {
  slot: number;
  hostIf: string;
  hostAddress: string;
  sandboxAddress: string;
  /** Moves the far end into the container's namespace as `eth0`, addressed and routed. */
  moveInto(pid: number): Promise<MoveTiming>;
  remove(): Promise<void>;
}

export interface CreateLinkOptions {
  sandboxId: string;
  instanceId: string;
  range?: string;
  /** Whether the kernel may forward from the host end (the fast path); default false. */
  forwarding?: boolean;
  /** Moves without spawning (see link-helper.ts); `ip` and `nsenter` are spawned without it. */
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

export async function removeLink(hostIf: string): Promise<void> {
  await exec('ip', ['link', 'del', hostIf]).catch((error: unknown) => {
    if (!(error instanceof ExecFailure && /Cannot find device/.test(error.stderr))) throw error;
  });
}

/**
 * Creates the pair with both ends in the host's namespace, the host end addressed and up, so that
 * everything but the move can happen while the container is still being created.
 */
/** Where a move's time went, for the debug log (configMs is 0 when the helper did both). */
export interface MoveTiming {
  moveMs: number;
  configMs: number;
}

export async function createLink(options: CreateLinkOptions): Promise<SandboxLink> {
  const range = options.range ?? DEFAULT_LINK_RANGE;
  const slots = slotCount(range);
  let lastError: unknown;
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const slot = randomInt(slots);
    const hostIf = `${HOST_PREFIX}${slot}`;
    const farIf = `${FAR_PREFIX}${slot}`;
    const { host, sandbox } = slotAddresses(range, slot);
    const remove = () => removeLink(hostIf);
    try {
      // One process for the pair and its host end. No IPv6 address is ever generated on the host
      // end (addrgenmode none, before it is up; disable_ipv6 below on top): the sandbox could
      // otherwise reach the host's link-local address.
      await exec('ip', ['-batch', '-'], {
        input: [
          `link add ${hostIf} type veth peer name ${farIf}`,
          `link set ${hostIf} addrgenmode none`,
          `link set ${hostIf} alias "${linkAlias(options.sandboxId, options.instanceId)}"`,
          `addr add ${host}/30 dev ${hostIf}`,
          `link set ${hostIf} up`,
        ].join('\n'),
      });
    } catch (error) {
      lastError = error;
      // The first line failing created nothing; a taken slot is worth another try, a missing
      // tool or permission is not. A later line failing leaves our pair to remove.
      const firstLine = error instanceof ExecFailure && /Command failed -:1\b/.test(error.stderr);
      if (firstLine && /File exists/.test((error as ExecFailure).stderr)) continue;
      if (!firstLine) await remove().catch(() => {});
      throw error;
    }
    try {
      await writeFile(`/proc/sys/net/ipv6/conf/${hostIf}/disable_ipv6`, '1').catch(() => {});
      // No forwarding from it unless the fast path needs it: without, should the runner's table
      // ever be flushed, packets from the sandbox still go nowhere but the host end. (The far end
      // is in no namespace but the host's yet, unaddressed: nothing can send through it before.)
      await writeFile(`/proc/sys/net/ipv4/conf/${hostIf}/forwarding`, options.forwarding ? '1' : '0');
    } catch (error) {
      await remove().catch(() => {});
      throw error;
    }
    const moveInto = async (pid: number): Promise<MoveTiming> => {
      const t0 = performance.now();
      const request = { farIf, pid, address: sandbox, prefix: 30, gateway: host };
      if (await options.mover?.move(request)) return { moveMs: performance.now() - t0, configMs: 0 };
      // Renamed in the same call: the host may have an eth0 of its own.
      await exec('ip', ['link', 'set', farIf, 'netns', String(pid), 'name', 'eth0']);
      const moveMs = performance.now() - t0;
      await exec('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', '-batch', '-'], {
        input: [`addr add ${sandbox}/30 dev eth0`, 'link set eth0 up', `route add default via ${host}`].join(
          '\n',
        ),
      });
      return { moveMs, configMs: performance.now() - t0 - moveMs };
    };
    return { slot, hostIf, hostAddress: host, sandboxAddress: sandbox, moveInto, remove };
  }
  throw lastError;
}

interface IpLink {
  ifname: string;
  ifalias?: string;
}

/** Host ends of sandbox links on this host, with the runner instance their alias names. */
export async function listLinks(): Promise<{ hostIf: string; sandboxId?: string; instanceId?: string }[]> {
  const links = JSON.parse(await exec('ip', ['-j', 'link', 'show', 'type', 'veth'])) as IpLink[];
  return links
    .filter((link) => link.ifname.startsWith(HOST_PREFIX) && link.ifalias?.startsWith('grexal '))
    .map((link) => ({
      hostIf: link.ifname,
      sandboxId: /sandbox=(\S+)/.exec(link.ifalias ?? '')?.[1],
      instanceId: /runner=(\S+)/.exec(link.ifalias ?? '')?.[1],
    }));
}
