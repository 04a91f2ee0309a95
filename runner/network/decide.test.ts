import { describe, expect, it } from 'vitest';
import { decide, decideName } from './decide.ts';
import { deniedRanges } from './denied.ts';
import { type NetworkPolicy, parseNetworkPolicy } from './policy.ts';

const policy = (input: unknown): NetworkPolicy => parseNetworkPolicy(input);
const NONE = policy('none');
const PUBLIC = policy('public');
const ALLOW = policy({
  mode: 'allow',
  allow: [
    'api.example.com:443',
    '*.cdn.example.com',
    '203.0.113.0/24',
    '[2001:db8::/32]:443',
    '0.0.0.0/0:8443',
  ],
});

describe('decide', () => {
  it('none refuses everything, public allows public addresses', () => {
    expect(decide(NONE, 'api.example.com', '203.0.113.1', 443)).toMatchObject({
      decision: 'denied',
      rule: 'none',
    });
    expect(decide(PUBLIC, undefined, '203.0.113.1', 443)).toEqual({ decision: 'allowed', rule: 'public' });
    expect(decide(PUBLIC, undefined, '2606:4700::1111', 53)).toEqual({ decision: 'allowed', rule: 'public' });
  });

  it('denies every denied range in every mode, whatever the name or the rules', () => {
    for (const { range } of deniedRanges()) {
      const family = range.family;
      const first = family === 4 ? (range.text.split('/')[0] ?? '') : (range.text.split('/')[0] ?? '');
      for (const p of [PUBLIC, ALLOW]) {
        const verdict = decide(p, 'api.example.com', first, 8443);
        expect(verdict, `${range.text}`).toMatchObject({
          decision: 'denied',
          rule: `denied-range ${range.text}`,
        });
        expect(verdict.reason).toContain('always denied');
      }
    }
  });

  it('blocks the metadata endpoint in all its forms, even under 0.0.0.0/0', () => {
    for (const address of [
      '169.254.169.254',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
      '::169.254.169.254',
    ]) {
      for (const p of [PUBLIC, ALLOW, policy({ mode: 'allow', allow: ['0.0.0.0/0', '::/0'] })]) {
        expect(decide(p, 'metadata.test', address, 80).decision, address).toBe('denied');
      }
    }
  });

  it('refuses a listed name whose address is denied (DNS rebinding)', () => {
    expect(decide(ALLOW, 'api.example.com', '127.0.0.1', 443)).toMatchObject({
      decision: 'denied',
      rule: 'denied-range 127.0.0.0/8',
    });
    expect(decide(ALLOW, 'api.example.com', '10.1.1.1', 443).decision).toBe('denied');
  });

  it('allow: hosts, wildcards, CIDRs, each with its port', () => {
    const cases: [string | undefined, string, number, string][] = [
      ['api.example.com', '198.51.100.1', 443, 'allow api.example.com:443'],
      ['api.example.com', '198.51.100.1', 80, 'not-listed'],
      ['API.example.com', '198.51.100.1', 443, 'not-listed'],
      ['x.cdn.example.com', '198.51.100.1', 80, 'allow *.cdn.example.com'],
      ['a.b.cdn.example.com', '198.51.100.1', 1, 'allow *.cdn.example.com'],
      ['cdn.example.com', '198.51.100.1', 80, 'not-listed'],
      ['evilcdn.example.com', '198.51.100.1', 80, 'not-listed'],
      ['cdn.example.com.evil.test', '198.51.100.1', 80, 'not-listed'],
      [undefined, '203.0.113.200', 22, 'allow 203.0.113.0/24'],
      [undefined, '203.0.114.1', 22, 'not-listed'],
      [undefined, '2001:db8::1', 443, 'allow [2001:db8::/32]:443'],
      [undefined, '2001:db8::1', 80, 'not-listed'],
      [undefined, '198.51.100.9', 8443, 'allow 0.0.0.0/0:8443'],
      [undefined, '::ffff:203.0.113.5', 22, 'not-listed'],
    ];
    for (const [host, address, port, rule] of cases) {
      const verdict = decide(ALLOW, host, address, port);
      expect(verdict.rule, `${host} ${address}:${port}`).toBe(rule);
      expect(verdict.decision).toBe(rule === 'not-listed' ? 'denied' : 'allowed');
    }
    expect(decide(ALLOW, 'other.test', '198.51.100.1', 443).reason).toBe(
      "other.test:443 (198.51.100.1) is not in this sandbox's allow list.",
    );
  });

  it('refuses what is not an address or a port', () => {
    expect(decide(PUBLIC, undefined, 'example.com', 80).decision).toBe('denied');
    expect(decide(PUBLIC, undefined, '203.0.113.1', 0).decision).toBe('denied');
    expect(decide(PUBLIC, undefined, '203.0.113.1', 70_000).decision).toBe('denied');
  });
});

describe('decideName', () => {
  it('answers names per mode: none nothing, public everything, allow only listed names', () => {
    expect(decideName(NONE, 'api.example.com').decision).toBe('denied');
    expect(decideName(PUBLIC, 'anything.test').decision).toBe('allowed');
    expect(decideName(ALLOW, 'api.example.com').rule).toBe('allow api.example.com:443');
    expect(decideName(ALLOW, 'API.EXAMPLE.COM.').decision).toBe('allowed');
    expect(decideName(ALLOW, 'x.cdn.example.com').decision).toBe('allowed');
    expect(decideName(ALLOW, 'exfiltrate-secret.attacker.test')).toMatchObject({
      decision: 'denied',
      rule: 'not-listed',
    });
  });
});
