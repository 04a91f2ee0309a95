import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from './errors.ts';
import { formatPath, parseOrThrow } from './validation.ts';

describe('formatPath', () => {
  it('reads like the JSON a caller sent', () => {
    expect(formatPath(['connections', 2, 'env', 'OPENAI_API_KEY'])).toBe('connections[2].env.OPENAI_API_KEY');
    expect(formatPath(['files', 'a.json'])).toBe('files["a.json"]');
    expect(formatPath([0], 'args')).toBe('args[0]');
  });
});

describe('parseOrThrow', () => {
  const schema = z
    .object({
      name: z.string(),
      size: z
        .number()
        .refine((n) => n < 10, { message: 'Too big.', params: { code: 'E_TOO_BIG', fix: 'Use < 10.' } }),
    })
    .strict();

  it('returns every problem at once with codes, paths and fixes', () => {
    let caught: unknown;
    try {
      parseOrThrow(schema, { size: 20, extra: 1 }, 'thing');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    const problems = (caught as ValidationError).problems;
    expect(problems.map((p) => [p.code, p.path])).toEqual(
      expect.arrayContaining([
        ['E_FIELD_REQUIRED', 'name'],
        ['E_TOO_BIG', 'size'],
        ['E_FIELD_UNKNOWN', ''],
      ]),
    );
    expect(problems.find((p) => p.code === 'E_TOO_BIG')?.fix).toBe('Use < 10.');
  });

  it('passes valid input through', () => {
    expect(parseOrThrow(schema, { name: 'a', size: 1 }, 'thing')).toEqual({ name: 'a', size: 1 });
  });
});
