import { describe, expect, it } from 'vitest';
import { hasManifestNetwork, runPolicy } from './run-policy.ts';

const login = { id: 'site', mode: 'browser_login', loginUrl: 'https://login.example.test/sign-in' };

describe('runPolicy', () => {
  it('is public when nobody says otherwise, and leaves a manifest without network as it is', () => {
    const manifest = { connections: [{ id: 'k', mode: 'secret_input' }] };
    const { manifest: rest, policy } = runPolicy(manifest, undefined);
    expect(rest).toBe(manifest);
    expect(policy).toEqual({ mode: 'public' });
  });

  it("splits the manifest's network off and adds its login hosts to an allow list", () => {
    const manifest = { connections: [login], network: { mode: 'allow', allow: ['api.example.test:443'] } };
    const { manifest: rest, policy } = runPolicy(manifest, undefined);
    expect(rest).toEqual({ connections: [login] });
    expect(policy.mode).toBe('allow');
    const hosts = policy.mode === 'allow' ? policy.rules.map((rule) => JSON.stringify(rule)) : [];
    expect(hosts.some((rule) => rule.includes('api.example.test'))).toBe(true);
    expect(hosts.some((rule) => rule.includes('login.example.test'))).toBe(true);
  });

  it('leaves no manifest when network was all it held', () => {
    expect(runPolicy({ network: 'none' }, undefined)).toEqual({
      manifest: undefined,
      policy: { mode: 'none' },
    });
  });

  it("narrows by the orchestrator's policy, and refuses a manifest asking for more", () => {
    expect(runPolicy({ network: 'public' }, 'none').policy).toEqual({ mode: 'none' });
    expect(() => runPolicy({ network: { mode: 'allow', allow: ['a.example.test:443'] } }, 'none')).toThrow();
  });

  it('reads malformed connections without failing (they are validated elsewhere)', () => {
    for (const manifest of [
      null,
      'x',
      { connections: 'x' },
      { connections: [null, 1, { mode: 'browser_login', loginUrl: 'not a url' }, { mode: 'browser_login' }] },
    ]) {
      expect(runPolicy(manifest, undefined).policy).toEqual({ mode: 'public' });
    }
  });

  it('names where a bad policy came from', () => {
    expect(() => runPolicy({ network: 'everything' }, undefined)).toThrow(/manifest\.network/);
    expect(() => runPolicy(undefined, 'everything')).toThrow(/network/);
  });
});

describe('hasManifestNetwork', () => {
  it('holds for an object with a network key only', () => {
    expect(hasManifestNetwork({ network: undefined })).toBe(true);
    expect(hasManifestNetwork({ connections: [] })).toBe(false);
    expect(hasManifestNetwork(null)).toBe(false);
    expect(hasManifestNetwork('network')).toBe(false);
  });
});
