/**
 * IP addresses and CIDR ranges as bigints, so IPv4, IPv6 and the IPv4 forms embedded in IPv6
 * (`::ffff:10.0.0.1`) are compared by one code path instead of string prefixes.
 */
import { isIPv4, isIPv6 } from 'node:net';

export interface Address {
  family: 4 | 6;
  value: bigint;
}

export interface Cidr {
  family: 4 | 6;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
  /** As written canonically, e.g. `10.0.0.0/8`. */
  text: string;
}

const BITS = { 4: 32, 6: 128 } as const;

function parseV4(text: string): bigint {
  return text.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function parseV6(text: string): bigint {
  // An embedded IPv4 tail (`::ffff:10.0.0.1`) becomes its two hex groups first.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  let body = text;
  if (tail.includes('.')) {
    const v4 = parseV4(tail);
    body = `${text.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = body.split('::');
  const groups = (s: string): bigint[] => (s === '' ? [] : s.split(':').map((g) => BigInt(`0x${g}`)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const zeros = Array<bigint>(8 - left.length - right.length).fill(0n);
  return [...left, ...zeros, ...right].reduce((acc, group) => (acc << 16n) | group, 0n);
}

/** Parses an IPv4 or IPv6 literal (no zone, no brackets); undefined when it is neither. */
export function parseAddress(text: string): Address | undefined {
  if (isIPv4(text)) return { family: 4, value: parseV4(text) };
  if (isIPv6(text) && !text.includes('%')) return { family: 6, value: parseV6(text) };
  return undefined;
}

export function formatAddress(address: Address): string {
  if (address.family === 4) {
    const v = address.value;
    return [24n, 16n, 8n, 0n].map((shift) => String((v >> shift) & 0xffn)).join('.');
  }
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((address.value >> shift) & 0xffffn));
  // RFC 5952: the longest run of two or more zero groups becomes `::`.
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at === -1) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.length).join(':')}`;
}

function mask(family: 4 | 6, prefix: number): bigint {
  const bits = BigInt(BITS[family]);
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(prefix))) - 1n);
}

/** `10.0.0.0/8`, `fc00::/7`; a bare address is its own /32 or /128. Host bits must be clear. */
export function parseCidr(text: string): Cidr | { error: string } {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const address = parseAddress(addressText);
  if (!address) return { error: `${JSON.stringify(addressText)} is not an IPv4 or IPv6 address` };
  const bits = BITS[address.family];
  const prefixText = slash === -1 ? String(bits) : text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
    return { error: `prefix /${prefixText} is not 0–${bits}` };
  }
  const prefix = Number(prefixText);
  const base = address.value & mask(address.family, prefix);
  if (base !== address.value) {
    const canonical = `${formatAddress({ family: address.family, value: base })}/${prefix}`;
    return { error: `host bits are set (the network is ${canonical})` };
  }
  return { family: address.family, base, prefix, text: `${formatAddress(address)}/${prefix}` };
}

export function cidrContains(cidr: Cidr, address: Address): boolean {
  return cidr.family === address.family && (address.value & mask(cidr.family, cidr.prefix)) === cidr.base;
}

/** True when every address of `inner` is in `outer`. */
export function cidrCovers(outer: Cidr, inner: Cidr): boolean {
  return (
    outer.family === inner.family &&
    outer.prefix <= inner.prefix &&
    cidrContains(outer, { family: inner.family, value: inner.base })
  );
}

/** Two ranges share at least one address. */
export function cidrOverlaps(a: Cidr, b: Cidr): boolean {
  return cidrCovers(a, b) || cidrCovers(b, a);
}

/** `cidr('10.0.0.0/8')` for constants; throws on a typo, which a unit test would catch. */
export function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if ('error' in parsed) throw new Error(`bad constant CIDR ${text}: ${parsed.error}`);
  return parsed;
}
