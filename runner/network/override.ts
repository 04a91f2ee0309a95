/**
 * The test-only DNS override, read from GREXAL_DANGEROUSLY_OVERRIDE_DNS for `grexal serve`, which
 * refuses it unless `--dangerously-enable-dns-override` is given as well. Only `.test` names and
 * IPv4 literals: it maps a test's reserved names onto the test's own listeners, nothing else.
 */
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { GrexalError } from '../errors.ts';
import { parseOrThrow } from '../validation.ts';
import type { DangerousDnsOverride } from './events.ts';

export const OVERRIDE_ENV = 'GREXAL_DANGEROUSLY_OVERRIDE_DNS';

const ipv4 = z.string().refine(isIPv4, 'Not an IPv4 address.');
export const dangerousDnsOverrideSchema = z.record(
  z.string().regex(/^([a-z0-9-]+\.)+test$/, 'Only names under .test may be overridden.'),
  z.strictObject({ address: ipv4, dialHost: ipv4.optional() }),
);

export function parseDangerousDnsOverride(
  input: unknown,
  what = 'dangerouslyOverrideDns',
): DangerousDnsOverride {
  return parseOrThrow(dangerousDnsOverrideSchema, input, what, what);
}

export function dangerousOverrideFromEnv(
  env: NodeJS.ProcessEnv,
  enabled: boolean,
): DangerousDnsOverride | undefined {
  const raw = env[OVERRIDE_ENV];
  if (raw === undefined || raw === '') return undefined;
  if (!enabled) {
    throw new GrexalError(
      'E_VALIDATION',
      `${OVERRIDE_ENV} is set, but it exists for tests only: unset it, or pass --dangerously-enable-dns-override if this runner serves tests.`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw new GrexalError('E_VALIDATION', `${OVERRIDE_ENV} is not valid JSON.`);
  }
  return parseDangerousDnsOverride(json, OVERRIDE_ENV);
}
