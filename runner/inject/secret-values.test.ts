import { describe, expect, it } from 'vitest';
import { MASK, MAX_LEARNED_FILE_BYTES, Masker } from './masker.ts';
import {
  MAX_SECRET_VALUES_PER_FILE,
  privateKeyBlocks,
  secretAssignmentValues,
  secretValuesIn,
} from './secret-values.ts';

const PEM =
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAzCanaryLine1\nq7ZCanaryLine2xyz\n-----END RSA PRIVATE KEY-----';

describe('secretAssignmentValues', () => {
  it('takes the values of secret-looking keys from .env, INI, YAML and properties lines', () => {
    const text = [
      'export OPENAI_API_KEY="sk-canary-env-0001"',
      'name = billing-service',
      "db.password = 'canary-ini-pass'",
      '  client-key-data: LS0tCanaryYamlData',
      '- token: canary-list-token,',
      'region: eu-west-1',
    ].join('\n');
    expect(secretAssignmentValues(text)).toEqual([
      'sk-canary-env-0001',
      'canary-ini-pass',
      'LS0tCanaryYamlData',
      'canary-list-token',
    ]);
  });

  it('reads a YAML block scalar under a secret key as its indented lines', () => {
    const text = 'auth:\n  private_key: |\n    line-one-canary\n    line-two-canary\n  user: bob\n';
    expect(secretAssignmentValues(text)).toEqual(['line-one-canary\nline-two-canary']);
  });

  it('leaves endpoints alone', () => {
    expect(secretAssignmentValues('token_uri: https://oauth.example.test/token')).toEqual([]);
  });
});

describe('privateKeyBlocks', () => {
  it('finds private keys, not certificates', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIBpublic\n-----END CERTIFICATE-----';
    expect(privateKeyBlocks(`${cert}\n${PEM}\n`)).toEqual([PEM]);
  });
});

describe('secretValuesIn', () => {
  it('is bounded, whatever a file holds', () => {
    const text = Array.from(
      { length: MAX_SECRET_VALUES_PER_FILE * 3 },
      (_, i) => `token${i}=value-${i}-canary`,
    ).join('\n');
    expect(secretValuesIn(text)).toHaveLength(MAX_SECRET_VALUES_PER_FILE);
  });
});

describe('Masker.learnFile', () => {
  it('masks a value printed without its key, from a small .env file', () => {
    const m = new Masker();
    expect(m.learnFile(Buffer.from('STRIPE_SECRET=sk_live_canary_42\nMODE=test\n'))).toBe(true);
    expect(m.mask('using sk_live_canary_42 in test')).toBe(`using ${MASK} in test`);
  });

  it('learns the secrets of a text file too large to learn whole, and only those', () => {
    const filler = Array.from({ length: 4000 }, (_, i) => `cluster-${i}: ordinary line number ${i}`).join(
      '\n',
    );
    const file = `${filler}\n    token: canary-kube-token-77\n${PEM}\n${filler}\n`;
    expect(Buffer.byteLength(file)).toBeGreaterThan(MAX_LEARNED_FILE_BYTES);
    const m = new Masker();
    expect(m.learnFile(Buffer.from(file))).toBe(true);
    expect(m.mask('t=canary-kube-token-77')).toBe(`t=${MASK}`);
    expect(m.mask('q7ZCanaryLine2xyz')).toBe(MASK);
    expect(m.mask('cluster-7: ordinary line number 7')).toBe('cluster-7: ordinary line number 7');
    expect(m.patternCount).toBeLessThan(200);
  });

  it('learns nothing from a large binary file, and says so', () => {
    const blob = Buffer.alloc(MAX_LEARNED_FILE_BYTES + 1, 0xff);
    const m = new Masker();
    expect(m.learnFile(blob)).toBe(false);
    expect(m.patternCount).toBe(0);
  });
});
