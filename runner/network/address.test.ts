import { describe, expect, it } from 'vitest';
import { cidr, cidrContains, cidrCovers, formatAddress, parseAddress, parseCidr } from './address.ts';

const addr = (text: string) => {
  const parsed = parseAddress(text);
  if (!parsed) throw new Error(`not an address: ${text}`);
  return parsed;
};

describe('addresses', () => {
  it('parses IPv4, IPv6 and IPv6 with an IPv4 tail to the same values', () => {
    expect(addr('10.0.0.1')).toEqual({ family: 4, value: 0x0a000001n });
    expect(addr('::ffff:10.0.0.1')).toEqual(addr('::ffff:a00:1'));
    expect(addr('0:0:0:0:0:ffff:a00:1')).toEqual(addr('::ffff:a00:1'));
    expect(addr('::1').value).toBe(1n);
    expect(addr('::').value).toBe(0n);
    expect(addr('fe80::1').value).toBe((0xfe80n << 112n) | 1n);
  });

  it('refuses what is not a plain literal', () => {
    for (const text of [
      '',
      'localhost',
      '10.0.0',
      '10.0.0.256',
      '1.2.3.4.5',
      'fe80::1%eth0',
      '[::1]',
      '0x7f.1',
      ':::',
    ]) {
      expect(parseAddress(text)).toBeUndefined();
    }
  });

  it('formats canonically (RFC 5952)', () => {
    for (const [input, output] of [
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['::', '::'],
      ['::1', '::1'],
      ['1::', '1::'],
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
      ['192.168.1.20', '192.168.1.20'],
    ] as const) {
      expect(formatAddress(addr(input))).toBe(output);
    }
  });

  it('round-trips every IPv6 zero-run shape through format and parse', () => {
    for (let mask = 0; mask < 256; mask++) {
      const groups = Array.from({ length: 8 }, (_, i) => ((mask >> i) & 1 ? (i + 1).toString(16) : '0'));
      const parsed = addr(groups.join(':'));
      expect(addr(formatAddress(parsed))).toEqual(parsed);
    }
  });

  it('parses CIDRs and refuses malformed ones with the reason', () => {
    expect(parseCidr('10.0.0.0/8')).toMatchObject({ family: 4, prefix: 8, text: '10.0.0.0/8' });
    expect(parseCidr('2001:db8::/32')).toMatchObject({ family: 6, prefix: 32, text: '2001:db8::/32' });
    expect(parseCidr('1.2.3.4')).toMatchObject({ prefix: 32 });
    expect(parseCidr('10.0.0.1/8')).toEqual({ error: 'host bits are set (the network is 10.0.0.0/8)' });
    expect(parseCidr('10.0.0.0/33')).toEqual({ error: 'prefix /33 is not 0–32' });
    expect(parseCidr('::/129')).toEqual({ error: 'prefix /129 is not 0–128' });
    expect(parseCidr('10.0.0.0/')).toHaveProperty('error');
    expect(parseCidr('10.0.0.0/-1')).toHaveProperty('error');
    expect(parseCidr('x/8')).toHaveProperty('error');
  });

  it('tests containment at the edges of a range', () => {
    const range = cidr('172.16.0.0/12');
    expect(cidrContains(range, addr('172.15.255.255'))).toBe(false);
    expect(cidrContains(range, addr('172.16.0.0'))).toBe(true);
    expect(cidrContains(range, addr('172.31.255.255'))).toBe(true);
    expect(cidrContains(range, addr('172.32.0.0'))).toBe(false);
    expect(cidrContains(range, addr('::ffff:172.16.0.1'))).toBe(false);
    expect(cidrCovers(cidr('0.0.0.0/0'), range)).toBe(true);
    expect(cidrCovers(range, cidr('0.0.0.0/0'))).toBe(false);
    expect(cidrCovers(cidr('172.16.0.0/16'), cidr('172.16.8.0/24'))).toBe(true);
  });
});
