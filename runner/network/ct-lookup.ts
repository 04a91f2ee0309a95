/**
 * The original destination of a redirected connection, asked of the kernel's connection table
 * over ctnetlink by the reply tuple (an O(1) lookup; /proc/net/nf_conntrack walks every bucket,
 * ~6 ms on a host with 262 144). Node has neither SO_ORIGINAL_DST nor netlink sockets: the root
 * helper asks (runner/host/root-helper.ts, its own thread), already running by then, since it
 * made the sandbox's link. Without python3 the /proc table is read instead (correct, slower).
 */
import { rootHelper } from '../host/root-helper.ts';
import { type OriginalDestination, originalDestination } from './conntrack.ts';

export interface ConnectionTuple {
  /** The host end's address and the proxy port the connection was redirected to. */
  proxyAddress: string;
  proxyPort: number;
  sandboxAddress: string;
  sandboxPort: number;
}

const FOUND = /^(\d{1,3}(?:\.\d{1,3}){3}) (\d{1,5})$/;

export async function lookupOriginal(tuple: ConnectionTuple): Promise<OriginalDestination | undefined> {
  const { proxyAddress, proxyPort, sandboxAddress, sandboxPort } = tuple;
  const answer = await rootHelper.request(['ct', proxyAddress, proxyPort, sandboxAddress, sandboxPort]);
  const found = answer === undefined ? null : FOUND.exec(answer);
  if (found) return { address: found[1]!, port: Number(found[2]) };
  // The helper failed, is missing, or found nothing: the slow table has the final word.
  return originalDestination(sandboxAddress, sandboxPort);
}
