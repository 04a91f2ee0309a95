/** validateInjectionInput: accepted input, the manifest's structure, missing credentials, and names of Object.prototype members. */
import { describe, expect, it } from 'vitest';
import { GrexalError, type Problem, ValidationError } from '../errors.ts';
import { PROBLEM_CODES } from './problem-codes.ts';
import { DEFAULT_MAX_TOTAL_FILE_BYTES } from './schemas.ts';
import { b64, codes, example, KEY, problemsOf, withConnection } from './testing/validate-input.ts';
import { validateInjectionInput } from './validate.ts';

describe('validateInjectionInput: accepted input', () => {
  it('accepts the DESIGN example and wraps every value as a Secret', () => {
    const { manifest, credentials } = example();
    const result = validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES);
    expect(result.connections.map((c) => c.id)).toEqual(['openai', 'aws', 'gmail', 'gcp', 'linkedin']);
    const openai = result.credentials.get('openai');
    expect(openai?.mode === 'secret_input' && openai.fields.get('api_key')?.reveal()).toBe(KEY);
    expect(JSON.stringify(Object.fromEntries(result.credentials))).not.toContain(KEY);
    expect(result.credentials.has('linkedin')).toBe(false);
  });

  it('lets an optional connection go without a credential', () => {
    const { manifest, credentials } = example();
    manifest.connections[0]!.required = false;
    delete credentials.openai;
    expect(
      validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES).credentials.has('openai'),
    ).toBe(false);
  });

  it('accepts base64 wrapped over lines', () => {
    const { manifest, credentials } = example();
    const wrapped = b64('x'.repeat(200)).replace(/(.{76})/g, '$1\n');
    credentials.gcp = { files: { 'service-account.json': { base64: wrapped } } };
    const gcp = validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES).credentials.get(
      'gcp',
    );
    expect(gcp?.mode === 'file_upload' && gcp.files.get('service-account.json')?.toString()).toBe(
      'x'.repeat(200),
    );
  });
});

describe('validateInjectionInput: manifest structure', () => {
  it('refuses unknown fields and an unknown mode, with codes', () => {
    const input = withConnection((c) => {
      c[0]!.secretly = true;
      c[2]!.mode = 'magic_link';
    });
    delete input.credentials.gmail;
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_FIELD_UNKNOWN', 'connections[0]'],
      ['E_CONNECTION_MODE_INVALID', 'connections[2].mode'],
    ]);
  });

  it('reports every problem at once, across manifest and credentials', () => {
    const input = withConnection((c) => {
      c[0]!.id = 'Bad';
      c[1]!.env = { PATH: 'access_key' };
    });
    input.credentials.Bad = input.credentials.openai;
    delete input.credentials.openai;
    input.credentials.gcp = { files: { 'service-account.json': { base64: '%%%' } } };
    input.credentials.nobody = {};
    const found = codes(problemsOf(input.manifest, input.credentials));
    expect(found).toEqual(
      expect.arrayContaining([
        ['E_CONNECTION_ID_INVALID', 'connections[0].id'],
        ['E_ENV_NAME_RESERVED', 'connections[1].env.PATH'],
        ['E_FILE_BASE64_INVALID', 'credentials.gcp.files["service-account.json"].base64'],
        ['E_CREDENTIAL_UNDECLARED', 'credentials.nobody'],
      ]),
    );
    // The credential for the invalid connection "Bad" is not also called undeclared.
    expect(found.filter(([code]) => code === 'E_CREDENTIAL_UNDECLARED')).toHaveLength(1);
  });

  it('gives every problem a fix and a documented code', () => {
    const input = withConnection((c) => {
      c[0]!.id = '..';
      c[0]!.env = { LD_PRELOAD: 'nope' };
    });
    for (const p of problemsOf(input.manifest, input.credentials)) {
      expect(p.fix).toBeTruthy();
      expect(
        Object.keys(PROBLEM_CODES).concat(['E_FIELD_UNKNOWN', 'E_FIELD_TYPE', 'E_FIELD_REQUIRED']),
      ).toContain(p.code);
    }
  });
});

describe('validateInjectionInput: missing credentials', () => {
  it('names every missing required connection', () => {
    const input = example();
    delete input.credentials.openai;
    delete input.credentials.gcp;
    let error: unknown;
    try {
      validateInjectionInput(input.manifest, input.credentials, DEFAULT_MAX_TOTAL_FILE_BYTES);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GrexalError);
    expect(error).not.toBeInstanceOf(ValidationError);
    expect((error as GrexalError).code).toBe('E_MISSING_CREDENTIALS');
    expect((error as GrexalError).message).toContain('openai, gcp');
    expect(codes((error as GrexalError).details as Problem[])).toEqual([
      ['E_CREDENTIAL_MISSING', 'credentials.openai'],
      ['E_CREDENTIAL_MISSING', 'credentials.gcp'],
    ]);
  });

  it('lists missing ones among other problems when the input is also invalid', () => {
    const input = example();
    delete input.credentials.openai;
    input.credentials.nobody = {};
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_CREDENTIAL_UNDECLARED', 'credentials.nobody'],
      ['E_CREDENTIAL_MISSING', 'credentials.openai'],
    ]);
  });

  it('refuses lone surrogates in the manifest and in credential values, never quoting the value', () => {
    const input = example();
    (input.manifest.connections[0] as { label: string }).label = 'Open\ud800AI';
    input.credentials.openai = { fields: { api_key: `${KEY}\udfff` } };
    const problems = problemsOf(input.manifest, input.credentials);
    expect(codes(problems)).toEqual(
      expect.arrayContaining([
        ['E_STRING_UNENCODABLE', 'connections[0].label'],
        ['E_STRING_UNENCODABLE', 'credentials.openai.fields.api_key'],
      ]),
    );
    expect(JSON.stringify(problems)).not.toContain(KEY);
  });
});

describe('validateInjectionInput: names of Object.prototype members', () => {
  // Counterexamples of the API fuzz (runner/api/app.fuzz.test.ts): these names read
  // Object.prototype's members instead of the caller's (a TypeError, answered 500).
  it('reports a field or file declared as __proto__ and not sent as missing', () => {
    const manifest = {
      connections: [
        { id: 'a', mode: 'secret_input', fields: [{ key: 'api_key' }, { key: '__proto__', secret: false }] },
        { id: 'b', mode: 'file_upload', files: [{ name: '__proto__' }] },
      ],
    };
    const credentials = { a: { fields: { api_key: KEY } }, b: { files: {} } };
    expect(codes(problemsOf(manifest, credentials))).toEqual([
      ['E_CREDENTIAL_FIELD_MISSING', 'credentials.a.fields.__proto__'],
      ['E_FILE_MISSING', 'credentials.b.files.__proto__'],
    ]);
  });

  it('stops a run whose required connection `constructor` has no credential', () => {
    const manifest = { connections: [{ id: 'constructor', mode: 'secret_input', fields: [{ key: 'k' }] }] };
    let error: unknown;
    try {
      validateInjectionInput(manifest, {}, DEFAULT_MAX_TOTAL_FILE_BYTES);
    } catch (e) {
      error = e;
    }
    expect((error as GrexalError | undefined)?.code).toBe('E_MISSING_CREDENTIALS');
  });
});
