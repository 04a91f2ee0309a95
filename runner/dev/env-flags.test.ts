import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { parseEnvFlags } from './env-flags.ts';

const problemsOf = (flags: string[]) => {
  try {
    parseEnvFlags(flags);
  } catch (error) {
    if (error instanceof ValidationError) return error.problems.map((p) => [p.code, p.path]);
    throw error;
  }
  return [];
};

describe('parseEnvFlags', () => {
  it('turns NAME=VALUE flags into env, the value kept whole (= and spaces included)', () => {
    expect(parseEnvFlags(['DEMO_LOGIN_URL=http://127.0.0.1:1/login?a=b', 'EMPTY=', 'x_1=a b'])).toEqual({
      DEMO_LOGIN_URL: 'http://127.0.0.1:1/login?a=b',
      EMPTY: '',
      x_1: 'a b',
    });
    expect(parseEnvFlags(undefined)).toEqual({});
  });

  it('refuses a flag without =, a bad name, and the names the runner or a loader owns, each named', () => {
    expect(
      problemsOf(['NOEQUALS', '1X=a', '=a', 'A-B=c', 'GREXAL_CDP_URL=x', 'LD_PRELOAD=/x', 'PATH=/x', 'OK=1']),
    ).toEqual([
      ['E_ENV_NAME_INVALID', '--env[0]'],
      ['E_ENV_NAME_INVALID', '--env[1]'],
      ['E_ENV_NAME_INVALID', '--env[2]'],
      ['E_ENV_NAME_INVALID', '--env[3]'],
      ['E_ENV_NAME_RESERVED', '--env[4]'],
      ['E_ENV_NAME_RESERVED', '--env[5]'],
      ['E_ENV_NAME_RESERVED', '--env[6]'],
    ]);
  });
});
