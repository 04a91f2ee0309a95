/**
 * Ranges no policy can open: the host's own and private networks, link-local (the cloud metadata
 * endpoint 169.254.169.254 among them), multicast and reserved space. IPv6 forms that carry an
 * IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are
 * judged by the IPv4 address inside, so `::ffff:169.254.169.254` is as closed as the original.
 */
import { type Address, type Cidr, cidr, cidrContains, parseAddress } from './address.ts';

export interface DeniedRange {
  range: Cidr;
  why: string;
}

const range = (text: string, why: string): DeniedRange => ({ range: cidr(text), why });

/**
 * Parsed on first use, not at load: parsing them (IPv6 validation compiles Node's regexes) took
 * ~4 ms of every `grexal run`'s start, before the container could be created.
 */
let denied: readonly DeniedRange[] | undefined;
let embedding: readonly Cidr[] | undefined;

export function deniedRanges(): readonly DeniedRange[] {
  denied ??= DENIED_RANGE_TEXTS.map(([text, why]) => range(text, why));
  return denied;
}

const DENIED_RANGE_TEXTS: readonly (readonly [string, string])[] = [
  ['0.0.0.0/8', '"this network" (0/8)'],
  ['10.0.0.0/8', 'private network (10/8)'],
  ['100.64.0.0/10', 'carrier-grade NAT (100.64/10)'],
  ['127.0.0.0/8', 'loopback of the host (127/8)'],
  ['169.254.0.0/16', 'link-local, where the cloud metadata endpoint lives (169.254/16)'],
  ['172.16.0.0/12', 'private network (172.16/12), Docker bridges among them'],
  ['192.0.0.0/24', 'IETF protocol assignments (192.0.0/24)'],
  ['192.168.0.0/16', 'private network (192.168/16)'],
  ['198.18.0.0/15', 'benchmarking network (198.18/15)'],
  ['224.0.0.0/4', 'multicast (224/4)'],
  ['240.0.0.0/4', 'reserved and broadcast (240/4)'],
  ['::/128', 'the unspecified address (::)'],
  ['::1/128', 'loopback of the host (::1)'],
  ['fc00::/7', 'unique local network (fc00::/7)'],
  ['fe80::/10', 'link-local (fe80::/10)'],
  ['fec0::/10', 'site-local, deprecated (fec0::/10)'],
  ['ff00::/8', 'multicast (ff00::/8)'],
];

/** IPv6 prefixes whose low 32 bits are an IPv4 address the packet ends up at. */
function embeddingV4(): readonly Cidr[] {
  embedding ??= [cidr('::ffff:0:0/96'), cidr('::/96'), cidr('64:ff9b::/96')];
  return embedding;
}

/** The IPv4 address an IPv6 address stands for, when it embeds one. */
export function embeddedV4(address: Address): Address | undefined {
  if (address.family !== 6) return undefined;
  if (!embeddingV4().some((prefix) => cidrContains(prefix, address))) return undefined;
  return { family: 4, value: address.value & 0xffffffffn };
}

/** The denied range an address falls in, or undefined when it is public. */
export function deniedRangeOf(address: Address): DeniedRange | undefined {
  const direct = deniedRanges().find((denied) => cidrContains(denied.range, address));
  if (direct) return direct;
  const inner = embeddedV4(address);
  return inner ? deniedRangeOf(inner) : undefined;
}

/** For a literal; anything that is not an IP address is denied rather than guessed at. */
export function isDeniedAddress(text: string): boolean {
  const address = parseAddress(text);
  return !address || deniedRangeOf(address) !== undefined;
}
