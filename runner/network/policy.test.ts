import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { MAX_RULES, type NetworkPolicy, parseNetworkPolicy, policyToJson } from './policy.ts';

function problems(input: unknown): string[] {
  try {
    parseNetworkPolicy(input);
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    for (const p of error.problems) expect(p.fix, p.code).toBeTruthy();
    return error.problems.map((p) => `${p.code} ${p.path}`);
  }
  return [];
}

const allow = (...rules: unknown[]) => ({ mode: 'allow', allow: rules });

describe('network policy schema', () => {
  it('accepts the three modes, as strings or objects', () => {
    expect(parseNetworkPolicy('none')).toEqual({ mode: 'none' });
    expect(parseNetworkPolicy({ mode: 'public' })).toEqual({ mode: 'public' });
    const policy = parseNetworkPolicy(
      allow(
        'api.openai.com',
        '*.googleapis.com:443',
        '203.0.113.0/24',
        '2001:db8::/32',
        '[2001:db8::/32]:443',
        'API.Example.COM:8080',
        '8.8.8.8',
      ),
    );
    expect(policyToJson(policy)).toEqual({
      mode: 'allow',
      allow: [
        'api.openai.com',
        '*.googleapis.com:443',
        '203.0.113.0/24',
        '2001:db8::/32',
        '[2001:db8::/32]:443',
        'api.example.com:8080',
        '8.8.8.8/32',
      ],
    });
  });

  it.each([
    ['', 'E_NETWORK_HOST_INVALID'],
    ['   ', 'E_NETWORK_HOST_INVALID'],
    ['-bad.com', 'E_NETWORK_HOST_INVALID'],
    ['bad-.com', 'E_NETWORK_HOST_INVALID'],
    ['a..com', 'E_NETWORK_HOST_INVALID'],
    ['under_score.com', 'E_NETWORK_HOST_INVALID'],
    ['exa mple.com', 'E_NETWORK_HOST_INVALID'],
    [`${'a'.repeat(64)}.com`, 'E_NETWORK_HOST_INVALID'],
    [`${'a.'.repeat(127)}com`, 'E_NETWORK_HOST_INVALID'],
    ['http://api.openai.com', 'E_NETWORK_HOST_INVALID'],
    ['api.openai.com/v1', 'E_NETWORK_CIDR_INVALID'],
    ['*', 'E_NETWORK_WILDCARD_INVALID'],
    ['*.', 'E_NETWORK_WILDCARD_INVALID'],
    ['*:443', 'E_NETWORK_WILDCARD_INVALID'],
    ['a.*.com', 'E_NETWORK_WILDCARD_INVALID'],
    ['*foo.com', 'E_NETWORK_WILDCARD_INVALID'],
    ['*.*.com', 'E_NETWORK_WILDCARD_INVALID'],
    ['foo.*', 'E_NETWORK_WILDCARD_INVALID'],
    ['api.openai.com:0', 'E_NETWORK_PORT_INVALID'],
    ['api.openai.com:65536', 'E_NETWORK_PORT_INVALID'],
    ['api.openai.com:-1', 'E_NETWORK_PORT_INVALID'],
    ['api.openai.com:', 'E_NETWORK_PORT_INVALID'],
    ['api.openai.com:https', 'E_NETWORK_PORT_INVALID'],
    ['[2001:db8::/32]:99999', 'E_NETWORK_PORT_INVALID'],
    ['203.0.113.0/33', 'E_NETWORK_CIDR_INVALID'],
    ['203.0.113.1/24', 'E_NETWORK_CIDR_INVALID'],
    ['203.0.113/24', 'E_NETWORK_CIDR_INVALID'],
    ['999.0.0.0/8', 'E_NETWORK_CIDR_INVALID'],
    ['1.2.3', 'E_NETWORK_CIDR_INVALID'],
    ['2001:db8::/129', 'E_NETWORK_CIDR_INVALID'],
    ['10.0.0.0/8', 'E_NETWORK_DESTINATION_DENIED'],
    ['10.1.2.3', 'E_NETWORK_DESTINATION_DENIED'],
    ['127.0.0.1:8080', 'E_NETWORK_DESTINATION_DENIED'],
    ['169.254.169.254', 'E_NETWORK_DESTINATION_DENIED'],
    ['169.254.169.254:80', 'E_NETWORK_DESTINATION_DENIED'],
    ['::ffff:169.254.169.254', 'E_NETWORK_DESTINATION_DENIED'],
    ['[::ffff:a9fe:a9fe]:80', 'E_NETWORK_DESTINATION_DENIED'],
    ['172.17.0.0/16', 'E_NETWORK_DESTINATION_DENIED'],
    ['192.168.1.0/24', 'E_NETWORK_DESTINATION_DENIED'],
    ['224.0.0.0/4', 'E_NETWORK_DESTINATION_DENIED'],
    ['255.255.255.255', 'E_NETWORK_DESTINATION_DENIED'],
    ['::1', 'E_NETWORK_DESTINATION_DENIED'],
    ['fd00::/8', 'E_NETWORK_DESTINATION_DENIED'],
    ['fe80::1', 'E_NETWORK_DESTINATION_DENIED'],
    ['localhost', 'E_NETWORK_DESTINATION_DENIED'],
    ['foo.localhost', 'E_NETWORK_DESTINATION_DENIED'],
    ['metadata.google.internal', 'E_NETWORK_DESTINATION_DENIED'],
    ['*.internal', 'E_NETWORK_DESTINATION_DENIED'],
  ])('refuses %j with %s', (rule, code) => {
    expect(problems(allow(rule))).toEqual([`${code} network.allow[0]`]);
  });

  it('keeps a CIDR that only overlaps denied ranges: the ranges stay denied when deciding', () => {
    expect(problems(allow('0.0.0.0/0', '::/0', '8.0.0.0/7'))).toEqual([]);
  });

  it('refuses bad shapes with stable codes and paths', () => {
    expect(problems('everything')).toEqual(['E_NETWORK_MODE_INVALID network']);
    expect(problems(42)).toEqual(['E_NETWORK_MODE_INVALID network']);
    expect(problems(null)).toEqual(['E_NETWORK_MODE_INVALID network']);
    expect(problems(['none'])).toEqual(['E_NETWORK_MODE_INVALID network']);
    expect(problems({ mode: 'open' })).toEqual(['E_NETWORK_MODE_INVALID network.mode']);
    expect(problems({})).toEqual(['E_NETWORK_MODE_INVALID network.mode']);
    expect(problems({ mode: 'none', allow: ['a.com'] })).toEqual(['E_FIELD_UNKNOWN network']);
    expect(problems({ mode: 'allow' })).toEqual(['E_FIELD_REQUIRED network.allow']);
    expect(problems({ mode: 'allow', allow: 'a.com' })).toEqual(['E_FIELD_TYPE network.allow']);
    expect(problems(allow())).toEqual(['E_NETWORK_ALLOW_EMPTY network.allow']);
    expect(problems(allow(7))).toEqual(['E_FIELD_TYPE network.allow[0]']);
    expect(problems({ ...allow('a.com'), extra: 1 })).toEqual(['E_FIELD_UNKNOWN network']);
  });

  it('lists every bad rule at once', () => {
    expect(problems(allow('a.com', '*', '10.0.0.0/8', 'b.com:0'))).toEqual([
      'E_NETWORK_WILDCARD_INVALID network.allow[1]',
      'E_NETWORK_DESTINATION_DENIED network.allow[2]',
      'E_NETWORK_PORT_INVALID network.allow[3]',
    ]);
  });

  it(`takes ${MAX_RULES} rules and refuses one more`, () => {
    const rules = Array.from({ length: MAX_RULES + 1 }, (_, i) => `h${i}.example.com`);
    expect(
      (parseNetworkPolicy(allow(...rules.slice(0, MAX_RULES))) as Extract<NetworkPolicy, { mode: 'allow' }>)
        .rules,
    ).toHaveLength(MAX_RULES);
    expect(problems(allow(...rules))).toEqual(['E_NETWORK_RULES_TOO_MANY network.allow']);
  });

  it('never throws anything but a ValidationError, whatever it is given', () => {
    const inputs: unknown[] = [
      undefined,
      true,
      [],
      { mode: 'allow', allow: [null, {}, [], 1e308] },
      { mode: { toString: null } },
      Object.create(null),
      { mode: 'allow', allow: ['\u0000', 'a'.repeat(100_000), '[', '[]:1', '[::1', ':80', '::ffff:'] },
    ];
    for (const input of inputs) expect(() => problems(input)).not.toThrow();
  });
});
