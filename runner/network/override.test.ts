import { describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import { dangerousOverrideFromEnv, OVERRIDE_ENV } from './override.ts';

describe('the test-only DNS override', () => {
  const env = (value: string) => ({ [OVERRIDE_ENV]: value });

  it('is refused unless explicitly enabled', () => {
    expect(() => dangerousOverrideFromEnv(env('{"a.test":{"address":"198.51.100.1"}}'), false)).toThrow(
      /tests only/,
    );
    expect(dangerousOverrideFromEnv({}, false)).toBeUndefined();
  });

  it('takes .test names and IPv4 literals only', () => {
    expect(
      dangerousOverrideFromEnv(env('{"a.test":{"address":"198.51.100.1","dialHost":"127.0.0.1"}}'), true),
    ).toEqual({
      'a.test': { address: '198.51.100.1', dialHost: '127.0.0.1' },
    });
    for (const bad of [
      '{"api.openai.com":{"address":"198.51.100.1"}}',
      '{"a.test":{"address":"x"}}',
      '[',
      '{"a.test":{"address":"198.51.100.1","x":1}}',
    ]) {
      expect(() => dangerousOverrideFromEnv(env(bad), true), bad).toThrow(GrexalError);
    }
  });
});
