import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, GrexalError, REQUEST_PROBLEM_CODES, toGrexalError, ValidationError } from './errors.ts';

const documented = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');

describe('error registry', () => {
  it('documents every code exactly once, with its summary', () => {
    const section = documented.slice(documented.indexOf('## Errors'), documented.indexOf('## Problem codes'));
    const listed = [...section.matchAll(/^- `(E_[A-Z_]+)`: (.*)$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(listed)).toEqual(
      Object.fromEntries(Object.entries(ERROR_CODES).map(([code, { summary }]) => [code, summary])),
    );
  });

  it("documents runner/'s own problem codes exactly once, with their summaries", () => {
    // Up to the first module's own section (network, connections and credentials, …).
    const start = documented.indexOf('## Problem codes');
    const section = documented.slice(start, documented.indexOf('\n### ', start));
    const listed = [...section.matchAll(/^- `(E_[A-Z_]+)`: (.*)$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(listed)).toEqual(REQUEST_PROBLEM_CODES);
  });

  it('serialises to the API envelope without the stack or cause', () => {
    const error = new GrexalError('E_IMAGE_NOT_FOUND', 'gone', { cause: new Error('secret-cause') });
    expect(JSON.stringify(error)).toBe('{"code":"E_IMAGE_NOT_FOUND","message":"gone"}');
    expect(error.status).toBe(400);
  });

  it('summarises every problem of a ValidationError', () => {
    const error = new ValidationError([
      { code: 'A', path: 'x', message: 'bad x.' },
      { code: 'B', path: 'y', message: 'bad y.' },
    ]);
    expect(error.message).toBe('Invalid request: x: bad x. (and 1 more problem(s))');
    expect(error.toJSON().details).toHaveLength(2);
  });

  it('wraps foreign errors, keeping abort distinct', () => {
    expect(toGrexalError(new Error('boom')).code).toBe('E_INTERNAL');
    expect(toGrexalError(new DOMException('stop', 'AbortError')).code).toBe('E_ABORTED');
  });
});
