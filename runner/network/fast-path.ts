/**
 * Which destinations the kernel may forward itself, without the proxy: the fast path. Pure, so the
 * one property that matters (no always-denied, host or test-redirected address ever enters a
 * set) is a unit test over address ranges. Everything not in a set still goes to the proxy,
 * which decides and records as before; the nft chain re-checks the denied ranges and local
 * addresses in front of the sets as well, so a wrong element could still not open them.
 */
import { cidrCovers, formatAddress, parseAddress } from './address.ts';
import { deniedRangeOf } from './denied.ts';
import type { NetworkPolicy } from './policy.ts';
import { ruleMatchesHost } from './rule.ts';

/** An element lives at least this long, so a client that caches an answer briefly still gets it. */
export const MIN_ELEMENT_TTL_S = 30;
/** And at most this long, so an address a name moved away from does not stay open for a day. */
export const MAX_ELEMENT_TTL_S = 600;

/** One element: an IPv4 address (or CIDR, for CIDR rules) and a port, or any port. */
export interface FastElement {
  /** `203.0.113.7` or `203.0.113.0/24`. */
  address: string;
  port?: number;
}

export interface FastPathContext {
  /** Addresses of the host itself (its public ones reach services bound to 0.0.0.0). */
  isHostAddress: (address: string) => boolean;
  /** Test-only override addresses the proxy dials elsewhere: never forwarded by the kernel. */
  proxiedAddresses: ReadonlySet<string>;
}

export function elementTtl(ttlSeconds: number): number {
  if (!Number.isFinite(ttlSeconds)) return MIN_ELEMENT_TTL_S;
  return Math.min(MAX_ELEMENT_TTL_S, Math.max(MIN_ELEMENT_TTL_S, Math.round(ttlSeconds)));
}

/**
 * The elements an answer of the sandbox's resolver adds: `name` answered with `address` under
 * `policy`. Only `allow` mode has sets (`public` forwards every public address in the chain
 * itself, `none` has no link); the address must be a public IPv4 address that is not the host's
 * and not redirected by the test override; then one element per host or suffix rule that names
 * it, with that rule's port.
 */
export function answerElements(
  policy: NetworkPolicy,
  name: string,
  address: string,
  context: FastPathContext,
): FastElement[] {
  if (policy.mode !== 'allow') return [];
  const parsed = parseAddress(address);
  if (parsed?.family !== 4 || deniedRangeOf(parsed)) return [];
  const shown = formatAddress(parsed);
  if (context.isHostAddress(shown) || context.proxiedAddresses.has(shown)) return [];
  const host = name.toLowerCase().replace(/\.$/, '');
  const ports = new Set<number | undefined>();
  for (const rule of policy.rules) if (ruleMatchesHost(rule, host)) ports.add(rule.port);
  // A rule for any port covers the port-specific ones.
  if (ports.has(undefined)) return [{ address: shown }];
  return [...ports].map((port) => ({ address: shown, port }));
}

/**
 * The CIDR rules of an `allow` policy as elements, IPv4 only (sandboxes have no IPv6 route).
 * Nested ranges under the same port (or under any port) are dropped: interval sets refuse
 * overlapping elements. A range that reaches into the denied ranges (`0.0.0.0/0`) is kept whole:
 * the chain sends denied and local addresses to the proxy before it looks at the sets.
 */
export function cidrElements(policy: NetworkPolicy): FastElement[] {
  if (policy.mode !== 'allow') return [];
  const cidrs = policy.rules.flatMap((rule) =>
    rule.kind === 'cidr' && rule.cidr.family === 4 ? [{ cidr: rule.cidr, port: rule.port }] : [],
  );
  const covered = (a: (typeof cidrs)[number], b: (typeof cidrs)[number]) =>
    (b.port === undefined || b.port === a.port) && cidrCovers(b.cidr, a.cidr);
  const kept = cidrs.filter(
    (entry, i) =>
      !cidrs.some((other, j) => j !== i && covered(entry, other) && (!covered(other, entry) || j < i)),
  );
  return kept.map((entry) => ({
    address: entry.cidr.text,
    ...(entry.port === undefined ? {} : { port: entry.port }),
  }));
}
