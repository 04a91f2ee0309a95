import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ValidationError } from './errors.ts';
import { findUnencodable, formatPath, isWellFormedText, parseOrThrow } from './validation.ts';

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

describe('text without a UTF-8 form', () => {
  const schema = z.strictObject({
    command: z.array(z.string()),
    env: z.record(z.string(), z.string()).optional(),
    id: z.string().regex(/^[a-z]+$/),
  });

  it('is refused wherever it is, values and keys, with E_STRING_UNENCODABLE and the path', () => {
    const input = JSON.parse(
      '{"command":["echo","\\ud800"],"env":{"A":"x\\udfffy","\\ud83d":"v"},"id":"a\\udc00"}',
    );
    try {
      parseOrThrow(schema, input, 'request', 'body');
      expect.unreachable();
    } catch (error) {
      const problems = (error as ValidationError).problems;
      expect(problems.map((p) => `${p.code} ${p.path}`)).toEqual([
        'E_STRING_UNENCODABLE body.command[1]',
        'E_STRING_UNENCODABLE body.env.A',
        'E_STRING_UNENCODABLE body.env["\\ud83d"]',
        'E_STRING_UNENCODABLE body.id',
      ]);
      expect(problems[0]?.fix).toContain('surrogate');
      // The value is never quoted (it may be a credential).
      expect(JSON.stringify(problems)).not.toContain('x\\udfffy');
    }
  });

  it('lets surrogate pairs and ordinary text through, and survives deep nesting', () => {
    expect(parseOrThrow(schema, { command: ['echo', '😀 ü'], id: 'a' }, 'request')).toEqual({
      command: ['echo', '😀 ü'],
      id: 'a',
    });
    const deep = JSON.parse(`${'['.repeat(100_000)}"\\ud800"${']'.repeat(100_000)}`);
    expect(findUnencodable(deep)).toHaveLength(1);
    expect(isWellFormedText('a\ud83d\ude00b')).toBe(true);
    expect(['\ud800', '\udfff', 'a\ude00', '\ud83d\ud83d'].some(isWellFormedText)).toBe(false);
  });
});
