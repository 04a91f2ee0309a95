/**
 * The host's own addresses, on every interface. Its private ones are in the denied ranges already;
 * this catches the public ones, where services bound to 0.0.0.0 (the runner's API among them)
 * would otherwise be one public-mode connection away. Re-read at most once a second.
 */
import { networkInterfaces } from 'node:os';
import { formatAddress, parseAddress } from './address.ts';

const REFRESH_MS = 1_000;
let cached: { at: number; addresses: Set<string> } | undefined;

function canonical(text: string): string {
  const parsed = parseAddress(text);
  return parsed ? formatAddress(parsed) : text;
}

export function isHostAddress(address: string, now = Date.now()): boolean {
  if (!cached || now - cached.at > REFRESH_MS) {
    const addresses = new Set<string>();
    for (const entries of Object.values(networkInterfaces())) {
      for (const entry of entries ?? []) addresses.add(canonical(entry.address.split('%')[0] ?? ''));
    }
    cached = { at: now, addresses };
  }
  return cached.addresses.has(canonical(address));
}
