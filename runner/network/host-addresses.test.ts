import { networkInterfaces } from 'node:os';
import { describe, expect, it } from 'vitest';
import { isHostAddress } from './host-addresses.ts';

describe("the host's own addresses", () => {
  it('include every address of every interface, in any spelling', () => {
    const all = Object.values(networkInterfaces()).flatMap((entries) => entries ?? []);
    expect(all.length).toBeGreaterThan(0);
    for (const entry of all)
      expect(isHostAddress(entry.address.split('%')[0] ?? ''), entry.address).toBe(true);
    expect(isHostAddress('0:0:0:0:0:0:0:1')).toBe(all.some((e) => e.address === '::1'));
    // Documentation space is nobody's address.
    expect(isHostAddress('192.0.2.77')).toBe(false);
  });
});
