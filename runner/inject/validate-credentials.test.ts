/** validateInjectionInput: the credentials sent for the declared connections. */
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_TOTAL_FILE_BYTES } from './schemas.ts';
import { codes, example, problemsOf } from './testing/validate-input.ts';
import { validateInjectionInput } from './validate.ts';

describe('validateInjectionInput: credentials', () => {
  it('refuses credentials for an undeclared connection', () => {
    const input = example();
    input.credentials.github = { fields: { token: 'ghp_0123456789' } };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_CREDENTIAL_UNDECLARED', 'credentials.github'],
    ]);
  });

  it("refuses a payload of the wrong mode's shape", () => {
    const input = example();
    input.credentials.openai = { access_token: 'ya29.0123456789' };
    input.credentials.gmail = { fields: { token: 'x'.repeat(10) } };
    input.credentials.linkedin = { fields: { user: 'someone-long' } };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_CREDENTIAL_MODE_MISMATCH', 'credentials.openai'],
      ['E_CREDENTIAL_MODE_MISMATCH', 'credentials.gmail'],
      ['E_CREDENTIAL_MODE_MISMATCH', 'credentials.linkedin'],
    ]);
  });

  it('refuses missing, unknown, short and NUL field values without quoting them', () => {
    const input = example();
    input.credentials.aws = { fields: { access_key: 'short', region: 'e', extra: 'whatever-value' } };
    input.credentials.openai = { fields: { api_key: `sk-with\0nul-inside` } };
    const problems = problemsOf(input.manifest, input.credentials);
    expect(codes(problems)).toEqual([
      ['E_CREDENTIAL_VALUE_INVALID', 'credentials.openai.fields.api_key'],
      ['E_SECRET_TOO_SHORT', 'credentials.aws.fields.access_key'],
      ['E_CREDENTIAL_FIELD_MISSING', 'credentials.aws.fields.secret_key'],
      ['E_CREDENTIAL_FIELD_UNKNOWN', 'credentials.aws.fields.extra'],
    ]);
    expect(JSON.stringify(problems)).not.toMatch(/short|whatever-value|sk-with/);
  });

  it('accepts a short non-secret field', () => {
    const input = example();
    expect(() =>
      validateInjectionInput(input.manifest, input.credentials, DEFAULT_MAX_TOTAL_FILE_BYTES),
    ).not.toThrow();
  });

  it('refuses a short OAuth token and an expiry in seconds', () => {
    const input = example();
    input.credentials.gmail = { access_token: 'ya29', refresh_token: 'r', expires_at: 1_700_000_000 };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_SECRET_TOO_SHORT', 'credentials.gmail.access_token'],
      ['E_SECRET_TOO_SHORT', 'credentials.gmail.refresh_token'],
      ['E_CREDENTIAL_VALUE_INVALID', 'credentials.gmail.expires_at'],
    ]);
  });

  it('refuses unknown fields in a credential', () => {
    const input = example();
    input.credentials.gmail = { access_token: 'ya29.0123456789', id_token: 'x' };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_FIELD_UNKNOWN', 'credentials.gmail'],
    ]);
  });
});
