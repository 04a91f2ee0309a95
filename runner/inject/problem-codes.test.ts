import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PROBLEM_CODES } from './problem-codes.ts';

const documented = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

describe('problem codes', () => {
  it('are documented in docs/errors.md with their summaries', () => {
    const section = documented.slice(documented.indexOf('### Connections and credentials'));
    const listed = [...section.matchAll(/^- `(E_[A-Z0-9_]+)`: (.*)$/gm)].map((m) => [m[1], m[2]]);
    expect(Object.fromEntries(listed)).toEqual(
      Object.fromEntries(Object.entries(PROBLEM_CODES).map(([code, { summary }]) => [code, summary])),
    );
  });
});
