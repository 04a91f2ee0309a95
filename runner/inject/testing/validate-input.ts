/**
 * Shared by the validateInjectionInput unit tests (runner/inject/validate*.test.ts): the DESIGN §4
 * example to start from, and the problems a refused input yields in a compact form.
 */
import type { Problem } from '../../errors.ts';
import { ValidationError } from '../../errors.ts';
import { DEFAULT_MAX_TOTAL_FILE_BYTES } from '../schemas.ts';
import { validateInjectionInput } from '../validate.ts';
import { designConnections } from './design-connections.ts';

export const KEY = 'sk-test-0123456789';
export const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');

/** The DESIGN §4 example, with credentials for every pre-collected mode. */
export function example() {
  return {
    manifest: {
      connections: [
        ...designConnections(),
        {
          id: 'linkedin',
          mode: 'browser_login',
          label: 'LinkedIn',
          loginUrl: 'https://www.linkedin.com/login',
        },
      ] as Record<string, unknown>[],
    },
    credentials: {
      openai: { fields: { api_key: KEY } },
      aws: { fields: { access_key: 'AKIAEXAMPLE0001', secret_key: 'aws-secret-0123456789', region: 'eu' } },
      gmail: {
        access_token: 'ya29.access-token',
        refresh_token: '1//refresh-token',
        expires_at: Date.now() + 3_600_000,
      },
      gcp: { files: { 'service-account.json': { base64: b64('{"type":"service_account"}\n') } } },
    } as Record<string, unknown>,
  };
}

export function problemsOf(
  manifest: unknown,
  credentials: unknown,
  cap = DEFAULT_MAX_TOTAL_FILE_BYTES,
): Problem[] {
  try {
    validateInjectionInput(manifest, credentials, cap);
  } catch (error) {
    if (error instanceof ValidationError) return error.problems;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

/** [code, path] pairs, for compact assertions. */
export const codes = (problems: Problem[]) => problems.map((p) => [p.code, p.path]);

export function withConnection(patch: (c: Record<string, unknown>[]) => void) {
  const input = example();
  patch(input.manifest.connections);
  return input;
}
