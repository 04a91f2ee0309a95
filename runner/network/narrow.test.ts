import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { effectivePolicy, ruleCovers } from './narrow.ts';
import { parseNetworkPolicy, policyToJson } from './policy.ts';
import { isRuleProblem, parseRule, type Rule } from './rule.ts';

const p = parseNetworkPolicy;
const rule = (text: string): Rule => {
  const parsed = parseRule(text);
  if (isRuleProblem(parsed)) throw new Error(parsed.message);
  return parsed;
};
const effective = (orchestrator?: unknown, manifest?: unknown, loginHosts?: string[]) =>
  policyToJson(
    effectivePolicy({
      orchestrator: orchestrator === undefined ? undefined : p(orchestrator),
      manifest: manifest === undefined ? undefined : p(manifest),
      loginHosts,
    }),
  );

describe('effective policy', () => {
  it('defaults to public; either side alone stands', () => {
    expect(effective()).toEqual({ mode: 'public' });
    expect(effective('none')).toEqual({ mode: 'none' });
    expect(effective(undefined, { mode: 'allow', allow: ['a.test'] })).toEqual({
      mode: 'allow',
      allow: ['a.test'],
    });
  });

  it('narrows the manifest by the orchestrator, never widens it', () => {
    expect(effective('public', 'none')).toEqual({ mode: 'none' });
    expect(effective('none', 'public')).toEqual({ mode: 'none' });
    expect(effective({ mode: 'allow', allow: ['a.test'] }, 'public')).toEqual({
      mode: 'allow',
      allow: ['a.test'],
    });
    expect(effective('public', { mode: 'allow', allow: ['a.test'] })).toEqual({
      mode: 'allow',
      allow: ['a.test'],
    });
    expect(
      effective(
        { mode: 'allow', allow: ['*.example.test'] },
        { mode: 'allow', allow: ['api.example.test:443'] },
      ),
    ).toEqual({
      mode: 'allow',
      allow: ['api.example.test:443'],
    });
  });

  it('refuses a manifest rule the orchestrator does not permit, naming both', () => {
    for (const [orchestrator, manifest] of [
      [
        { mode: 'allow', allow: ['a.test'] },
        { mode: 'allow', allow: ['a.test', 'b.test'] },
      ],
      ['none', { mode: 'allow', allow: ['b.test'] }],
      [
        { mode: 'allow', allow: ['b.test:443'] },
        { mode: 'allow', allow: ['b.test'] },
      ],
    ] as const) {
      try {
        effective(orchestrator, manifest);
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(ValidationError);
        const problem = (error as ValidationError).problems[0];
        expect(problem).toMatchObject({ code: 'E_NETWORK_NOT_PERMITTED', path: 'manifest.network' });
        expect(problem?.message).toContain('b.test');
        expect(problem?.message).toMatch(/manifest: allow \[.*\].*orchestrator's policy \((none|allow \[)/);
      }
    }
  });

  it('adds browser_login hosts to allow lists, never loopback or literals, never to none', () => {
    expect(
      effective({ mode: 'allow', allow: ['a.test'] }, undefined, [
        'login.example.test',
        '127.0.0.1',
        'localhost',
      ]),
    ).toEqual({
      mode: 'allow',
      allow: ['a.test', 'login.example.test'],
    });
    expect(effective('none', undefined, ['login.example.test'])).toEqual({ mode: 'none' });
  });
});

describe('ruleCovers', () => {
  it.each([
    ['*.example.test', 'a.example.test', true],
    ['*.example.test', '*.a.example.test', true],
    ['*.example.test', 'example.test', false],
    ['*.example.test', '*.example.test', true],
    ['a.example.test', '*.example.test', false],
    ['a.example.test:443', 'a.example.test', false],
    ['a.example.test', 'a.example.test:443', true],
    ['203.0.113.0/24', '203.0.113.128/25', true],
    ['203.0.113.128/25', '203.0.113.0/24', false],
    ['203.0.113.0/24', 'a.example.test', false],
    ['*.example.test', '203.0.113.0/24', false],
  ])('%s covers %s: %s', (outer, inner, expected) => {
    expect(ruleCovers(rule(outer), rule(inner))).toBe(expected);
  });
});
