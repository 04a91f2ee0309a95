import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { NETWORK_PROBLEM_CODES } from './problem-codes.ts';

const documented = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('network problem codes', () => {
  it('are documented in docs/errors.md with their summaries', () => {
    const section = documented.slice(documented.indexOf('### Network policy'));
    const end = section.indexOf('\n#', 1);
    const listed = [
      ...(end === -1 ? section : section.slice(0, end)).matchAll(/^- `(E_[A-Z0-9_]+)`: (.*)$/gm),
    ];
    expect(Object.fromEntries(listed.map((m) => [m[1], m[2]]))).toEqual(
      Object.fromEntries(Object.entries(NETWORK_PROBLEM_CODES).map(([code, { summary }]) => [code, summary])),
    );
  });
});
