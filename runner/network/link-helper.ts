/**
 * A sandbox's veth pair made with its far end created inside the sandbox's namespace, both ends
 * configured, a slot's lock made, and links deleted, without spawning anything: the root helper
 * (../host/root-helper.ts) sends the rtnetlink requests itself, the host end's from the host's
 * namespace and `eth0`'s from a thread that joined the sandbox's (setns of a network namespace is
 * per thread). The processes it replaces (`ip` for the pair and the host end, `nsenter … ip` for
 * the inside, `ip -batch` for a lock, `ip link del` twice per teardown) cost 7-20 ms each on a
 * loaded two-core host, and every spawn from the runner's big process blocks its event loop for
 * the fork. Without python3 the caller spawns them.
 */
import { base64, failure, rootHelper } from '../host/root-helper.ts';

export interface PairRequest {
  hostIf: string;
  pid: number;
  hostAddress: string;
  sandboxAddress: string;
  alias: string;
  forwarding: boolean;
}

export class LinkHelper {
  /** Starts the helper ahead of the first start. */
  warm(): void {
    rootHelper.warm();
  }

  /**
   * Makes and configures the pair. `false` when there is no helper (the caller spawns `ip`
   * instead); throws what the kernel answered otherwise.
   */
  async makePair(request: PairRequest): Promise<boolean> {
    const { hostIf, pid, hostAddress, sandboxAddress, forwarding, alias } = request;
    const answer = await rootHelper.request([
      'pair',
      hostIf,
      pid,
      hostAddress,
      sandboxAddress,
      forwarding ? 1 : 0,
      base64(alias),
    ]);
    if (answer === undefined) return false;
    if (answer !== 'ok') throw new Error(`making ${hostIf} for ${pid}: ${failure(answer)}`);
    return true;
  }

  /**
   * Makes a slot's lock (veth.ts): `lockIf` and its far end `farIf`, down, holding `address`/32.
   * `exists` when the name is taken (another sandbox's slot), `false` when there is no helper (the
   * caller spawns `ip`); throws what the kernel answered otherwise, having removed what it made.
   */
  async makeLock(lockIf: string, farIf: string, address: string, alias: string): Promise<boolean | 'exists'> {
    const answer = await rootHelper.request(['lock', lockIf, farIf, address, base64(alias)]);
    if (answer === undefined) return false;
    if (answer === 'exists') return 'exists';
    if (answer !== 'ok') throw new Error(`making ${lockIf}: ${failure(answer)}`);
    return true;
  }

  /**
   * Deletes the link named `ifname` (a link that is not there is not an error). `false` when there
   * is no helper (the caller spawns `ip link del`); throws what the kernel answered otherwise.
   */
  async deleteLink(ifname: string): Promise<boolean> {
    const answer = await rootHelper.request(['del', ifname]);
    if (answer === undefined) return false;
    if (answer !== 'ok' && answer !== 'gone') throw new Error(`deleting ${ifname}: ${failure(answer)}`);
    return true;
  }
}
