import { describe, expect, it } from 'vitest';
import { requestTakeoverParamsSchema } from './protocol.ts';
import { untilProblem, urlGlobMatcher } from './until.ts';

/** The field a refused `until` is reported under, as the runner's invalid_request names it. */
function refusedAt(until: unknown): string | undefined {
  const parsed = requestTakeoverParamsSchema.safeParse({ reason: 'Log in', until });
  return parsed.success ? undefined : parsed.error.issues[0]!.path.join('.');
}

describe('until', () => {
  it('accepts a URL glob with a host, a cookie name, or both', () => {
    expect(refusedAt({ url: 'https://app.example.test/home*' })).toBeUndefined();
    expect(refusedAt({ url: '*://*.example.test/*' })).toBeUndefined();
    expect(refusedAt({ cookie: 'session_id' })).toBeUndefined();
    expect(refusedAt({ url: 'http://127.0.0.1:8080/done', cookie: '__Host-sid' })).toBeUndefined();
  });

  it('refuses neither field, an invalid glob, a glob matching every site, a non-token cookie and an over-long glob, naming the field', () => {
    expect(refusedAt({})).toBe('until');
    expect(refusedAt({ url: 'example.test/home' })).toBe('until.url');
    expect(refusedAt({ url: 'https://ex ample.test/' })).toBe('until.url');
    for (const everything of ['*', '**', 'https://*', '*://*', 'https://*/*', '*://?*.*/*'])
      expect(refusedAt({ url: everything })).toBe('until.url');
    expect(refusedAt({ cookie: 'a b' })).toBe('until.cookie');
    expect(refusedAt({ cookie: 'sid;x=1' })).toBe('until.cookie');
    expect(refusedAt({ cookie: '' })).toBe('until.cookie');
    expect(refusedAt({ url: `https://example.test/${'a'.repeat(2000)}` })).toBe('until.url');
    expect(refusedAt({ url: 'https://example.test/', extra: 1 })).toBe('until');
    expect(untilProblem({ url: 'https://example.test/' })).toBeUndefined();
  });

  it('matches `*` across slashes, `?` as one character, and the rest literally', () => {
    const home = urlGlobMatcher('https://app.example.test/home*');
    expect(home('https://app.example.test/home')).toBe(true);
    expect(home('https://app.example.test/home/feed?x=1')).toBe(true);
    expect(home('https://app.example.test/login?next=/home')).toBe(false);
    expect(home('https://appXexample.test/home')).toBe(false);
    expect(urlGlobMatcher('http://127.0.0.1:8080/step?')('http://127.0.0.1:8080/step2')).toBe(true);
    expect(urlGlobMatcher('http://127.0.0.1:8080/step?')('http://127.0.0.1:8080/step')).toBe(false);
  });
});
