import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatAddress, parseAddress } from './address.ts';
import { deniedRangeOf, deniedRanges } from './denied.ts';
import {
  answerElements,
  cidrElements,
  elementTtl,
  type FastPathContext,
  MAX_ELEMENT_TTL_S,
  MIN_ELEMENT_TTL_S,
} from './fast-path.ts';
import { type NetworkPolicy, parseNetworkPolicy } from './policy.ts';

const policy = (input: unknown): NetworkPolicy => parseNetworkPolicy(input);
const ALLOW = policy({
  mode: 'allow',
  allow: ['api.example.com:443', 'api.example.com:8443', '*.cdn.example.com', '0.0.0.0/0:8080'],
});
const context: FastPathContext = {
  isHostAddress: (address) => address === '203.0.113.250',
  proxiedAddresses: new Set(['198.51.100.10']),
};

const v4 = (value: bigint) => formatAddress({ family: 4, value });
const DENIED_V4 = deniedRanges().filter((d) => d.range.family === 4);
/** Any address inside one of the always-denied IPv4 ranges, first and last included. */
const deniedAddress = fc
  .constantFrom(...DENIED_V4)
  .chain(({ range }) =>
    fc
      .bigInt({ min: 0n, max: (1n << BigInt(32 - range.prefix)) - 1n })
      .map((offset) => v4(range.base + offset)),
  );
const anyV4 = fc.bigInt({ min: 0n, max: 0xffffffffn }).map(v4);
const names = fc.constantFrom('api.example.com', 'x.cdn.example.com', 'API.EXAMPLE.COM.', 'cdn.example.com');

describe('answerElements: what an answer of the resolver lets the kernel forward', () => {
  it('never admits an always-denied address, whatever the name and the policy', () => {
    fc.assert(
      fc.property(deniedAddress, names, fc.constantFrom(ALLOW, policy('public')), (address, name, p) => {
        expect(answerElements(p, name, address, context)).toEqual([]);
      }),
      { numRuns: 2_000 },
    );
  });

  it('admits an address only when it is public IPv4, not the host, not redirected, under a listed name', () => {
    fc.assert(
      fc.property(anyV4, names, (address, name) => {
        const elements = answerElements(ALLOW, name, address, context);
        const parsed = parseAddress(address);
        const eligible =
          parsed !== undefined &&
          deniedRangeOf(parsed) === undefined &&
          address !== '203.0.113.250' &&
          address !== '198.51.100.10' &&
          name !== 'cdn.example.com';
        expect(elements.length > 0).toBe(eligible);
        for (const element of elements) expect(element.address).toBe(address);
      }),
      { numRuns: 5_000 },
    );
  });

  it('keeps the ports of the rules that named the address; a rule for any port covers them', () => {
    expect(answerElements(ALLOW, 'api.example.com', '203.0.113.7', context)).toEqual([
      { address: '203.0.113.7', port: 443 },
      { address: '203.0.113.7', port: 8443 },
    ]);
    expect(answerElements(ALLOW, 'a.cdn.example.com', '203.0.113.7', context)).toEqual([
      { address: '203.0.113.7' },
    ]);
    const both = policy({ mode: 'allow', allow: ['api.example.com:443', 'api.example.com'] });
    expect(answerElements(both, 'api.example.com', '203.0.113.7', context)).toEqual([
      { address: '203.0.113.7' },
    ]);
  });

  it('admits nothing for IPv6, for public mode (its chain needs no set) or for none', () => {
    const ipv6 = policy({ mode: 'allow', allow: ['api.example.com'] });
    expect(answerElements(ipv6, 'api.example.com', '2001:db8::1', context)).toEqual([]);
    expect(answerElements(ipv6, 'api.example.com', '::ffff:203.0.113.7', context)).toEqual([]);
    expect(answerElements(policy('public'), 'api.example.com', '203.0.113.7', context)).toEqual([]);
    expect(answerElements(policy('none'), 'api.example.com', '203.0.113.7', context)).toEqual([]);
  });

  it('the metadata endpoint stays out even when an allowed name answers it (rebinding)', () => {
    expect(answerElements(ALLOW, 'api.example.com', '169.254.169.254', context)).toEqual([]);
  });
});

describe('cidrElements', () => {
  it('keeps IPv4 CIDR rules, drops ranges nested under the same or any port', () => {
    const p = policy({
      mode: 'allow',
      allow: [
        '203.0.113.0/24',
        '203.0.113.0/25',
        '198.51.100.0/24:443',
        '198.51.100.7:443',
        '[2001:db8::/32]:443',
        '192.0.2.0/24:443',
        '192.0.2.0/24:80',
        'a.example.com',
      ],
    });
    expect(cidrElements(p)).toEqual([
      { address: '203.0.113.0/24' },
      { address: '198.51.100.0/24', port: 443 },
      { address: '192.0.2.0/24', port: 443 },
      { address: '192.0.2.0/24', port: 80 },
    ]);
    expect(cidrElements(policy('public'))).toEqual([]);
  });

  it('keeps one of two equal ranges, never none', () => {
    const p = policy({ mode: 'allow', allow: ['203.0.113.0/24', '203.0.113.0/24'] });
    expect(cidrElements(p)).toEqual([{ address: '203.0.113.0/24' }]);
  });
});

describe('elementTtl', () => {
  it('bounds the TTL of an answer', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer(), fc.double()), (ttl) => {
        const bounded = elementTtl(ttl);
        expect(bounded).toBeGreaterThanOrEqual(MIN_ELEMENT_TTL_S);
        expect(bounded).toBeLessThanOrEqual(MAX_ELEMENT_TTL_S);
        expect(Number.isInteger(bounded)).toBe(true);
      }),
    );
  });
});
