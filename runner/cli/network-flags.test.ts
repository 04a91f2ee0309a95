import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { manifestWithNetwork, parseNetworkFlags } from './network-flags.ts';

const problems = (values: { network?: string; allow?: string[] }) => {
  try {
    parseNetworkFlags(values);
    return [];
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    return error.problems.map((p) => `${p.code} ${p.path}`);
  }
};

describe('network flags', () => {
  it('maps --network and --allow onto a policy', () => {
    expect(parseNetworkFlags({})).toBeUndefined();
    expect(parseNetworkFlags({ network: 'none' })).toBe('none');
    expect(parseNetworkFlags({ network: 'public' })).toBe('public');
    expect(parseNetworkFlags({ allow: ['a.test', '*.b.test:443'] })).toEqual({
      mode: 'allow',
      allow: ['a.test', '*.b.test:443'],
    });
  });

  it('refuses contradictions, unknown modes and bad destinations', () => {
    expect(problems({ network: 'none', allow: ['a.test'] })).toEqual(['E_NETWORK_MODE_INVALID --network']);
    expect(problems({ network: 'everything' })).toEqual(['E_NETWORK_MODE_INVALID --network']);
    expect(problems({ network: 'allow' })).toEqual(['E_NETWORK_MODE_INVALID --network']);
    expect(problems({ allow: ['a.test', '10.0.0.0/8'] })).toEqual([
      'E_NETWORK_DESTINATION_DENIED --allow.allow[1]',
    ]);
  });

  it("carries grexal.json's network beside its connections", () => {
    expect(manifestWithNetwork({ connections: [] }, { name: 'x', network: 'none' })).toEqual({
      connections: [],
      network: 'none',
    });
    expect(manifestWithNetwork({ connections: [] }, { name: 'x' })).toEqual({ connections: [] });
  });
});
