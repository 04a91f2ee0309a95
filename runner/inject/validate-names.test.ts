/** validateInjectionInput: connection ids, env names and their targets. */
import { describe, expect, it } from 'vitest';
import { RESERVED_ENV_NAMES } from './names.ts';
import { DEFAULT_MAX_TOTAL_FILE_BYTES } from './schemas.ts';
import { codes, problemsOf, withConnection } from './testing/validate-input.ts';
import { validateInjectionInput } from './validate.ts';

describe('validateInjectionInput: bad connection ids', () => {
  const bad = ['../x', 'a/b', '..', '', 'a'.repeat(65), 'OpenAI', 'nul\0id', '-lead', '_lead', 'sp ace'];
  for (const id of bad) {
    it(`refuses ${JSON.stringify(id.length > 20 ? `${id.slice(0, 10)}…(${id.length})` : id)}`, () => {
      const input = withConnection((c) => {
        c[0]!.id = id;
      });
      delete input.credentials.openai;
      expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
        ['E_CONNECTION_ID_INVALID', 'connections[0].id'],
      ]);
    });
  }

  it('accepts a 64-character id', () => {
    const input = withConnection((c) => {
      c[0]!.id = 'a'.repeat(64);
    });
    input.credentials['a'.repeat(64)] = input.credentials.openai;
    delete input.credentials.openai;
    expect(() =>
      validateInjectionInput(input.manifest, input.credentials, DEFAULT_MAX_TOTAL_FILE_BYTES),
    ).not.toThrow();
  });

  it('refuses duplicate ids', () => {
    const input = withConnection((c) => {
      c[1]!.id = 'openai';
    });
    delete input.credentials.aws;
    expect(codes(problemsOf(input.manifest, input.credentials))).toContainEqual([
      'E_CONNECTION_ID_DUPLICATE',
      'connections[1].id',
    ]);
  });
});

describe('validateInjectionInput: env names and targets', () => {
  const reservedSamples = [
    'PATH',
    'HOME',
    'LD_PRELOAD',
    'LD_LIBRARY_PATH',
    'GREXAL_TOKEN',
    'NODE_OPTIONS',
    'PYTHONPATH',
    'BASH_ENV',
  ];
  for (const name of reservedSamples) {
    it(`refuses reserved ${name}`, () => {
      const input = withConnection((c) => {
        c[0]!.env = { [name]: 'api_key' };
      });
      expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
        ['E_ENV_NAME_RESERVED', `connections[0].env.${name}`],
      ]);
    });
  }

  it('documents a reserved list that includes the basics', () => {
    for (const name of ['PATH', 'HOME', 'NODE_OPTIONS']) expect(RESERVED_ENV_NAMES.has(name)).toBe(true);
  });

  for (const name of ['lower', '1ABC', 'A-B', 'A B', '', 'A'.repeat(129)]) {
    it(`refuses invalid env name ${JSON.stringify(name.slice(0, 12))}`, () => {
      const input = withConnection((c) => {
        c[0]!.env = { [name]: 'api_key' };
      });
      expect(problemsOf(input.manifest, input.credentials).map((p) => p.code)).toEqual([
        'E_ENV_NAME_INVALID',
      ]);
    });
  }

  it('refuses a mapping to an undeclared field or file', () => {
    const input = withConnection((c) => {
      c[0]!.env = { OPENAI_API_KEY: 'apikey', OPENAI_FILE: 'file:key.txt' };
      c[3]!.env = { GOOGLE_APPLICATION_CREDENTIALS: 'file:other.json', GCP_FIELD: 'service-account.json' };
    });
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_ENV_TARGET_UNKNOWN', 'connections[0].env.OPENAI_API_KEY'],
      ['E_ENV_TARGET_UNKNOWN', 'connections[0].env.OPENAI_FILE'],
      ['E_ENV_TARGET_UNKNOWN', 'connections[3].env.GOOGLE_APPLICATION_CREDENTIALS'],
      ['E_ENV_TARGET_UNKNOWN', 'connections[3].env.GCP_FIELD'],
    ]);
  });

  it('accepts file:<name> of a secret_input file', () => {
    const input = withConnection((c) => {
      (c[1]!.env as Record<string, string>).AWS_SHARED_CREDENTIALS_FILE = 'file:credentials.json';
    });
    expect(() =>
      validateInjectionInput(input.manifest, input.credentials, DEFAULT_MAX_TOTAL_FILE_BYTES),
    ).not.toThrow();
  });

  it('refuses one env name set by two connections', () => {
    const input = withConnection((c) => {
      c[1]!.env = { OPENAI_API_KEY: 'access_key' };
    });
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_ENV_NAME_DUPLICATE', 'connections[1].env.OPENAI_API_KEY'],
    ]);
  });
});
