import { describe, expect, it } from 'vitest';
import { step } from './masking-stream.ts';
import { PatternSet } from './pattern-set.ts';

/** Deterministic pseudo-random source so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function randomString(next: () => number, alphabet: string, min: number, max: number): string {
  const length = min + Math.floor(next() * (max - min + 1));
  let out = '';
  for (let i = 0; i < length; i++) out += alphabet[Math.floor(next() * alphabet.length)];
  return out;
}

/** The reference: one alternation, longest first, which is leftmost-then-longest. */
function reference(patterns: string[], text: string, replacement: string): string {
  const sorted = [...new Set(patterns)].sort((a, b) => b.length - a.length);
  const escaped = sorted.map((p) => p.replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&'));
  return text.replace(new RegExp(escaped.join('|'), 'g'), replacement);
}

describe('PatternSet', () => {
  it('agrees with a longest-first alternation on overlapping random patterns', () => {
    const next = rng(7);
    for (let round = 0; round < 300; round++) {
      const patterns = Array.from({ length: 1 + Math.floor(next() * 6) }, () =>
        randomString(next, 'ab', 3, 7),
      );
      const text = randomString(next, 'abc', 0, 60);
      expect(new PatternSet(patterns).replace(text, '#'), `${JSON.stringify(patterns)} ${text}`).toBe(
        reference(patterns, text, '#'),
      );
    }
  });

  it('streams to the same result as masking the whole text, at any chunking', () => {
    const next = rng(11);
    for (let round = 0; round < 300; round++) {
      const patterns = Array.from({ length: 1 + Math.floor(next() * 5) }, () =>
        randomString(next, 'ab', 3, 8),
      );
      const set = new PatternSet(patterns);
      const text = randomString(next, 'abc', 0, 50);
      let held = '';
      let out = '';
      for (let at = 0; at < text.length; ) {
        const size = 1 + Math.floor(next() * 5);
        const r = step(set, held + text.slice(at, at + size), '#');
        out += r.out;
        held = r.rest;
        at += size;
      }
      out += set.replace(held, '#');
      expect(out, `${JSON.stringify(patterns)} ${text}`).toBe(set.replace(text, '#'));
    }
  });

  it('holds back exactly the tail that could still become a match', () => {
    const set = new PatternSet(['secret-value', 'other-token']);
    expect(set.pendingSuffix('say secret-va')).toBe('secret-va'.length);
    expect(set.pendingSuffix('say secret-value')).toBe(0);
    expect(set.pendingSuffix('prompt: ')).toBe(0);
    expect(set.pendingSuffix('x o')).toBe(1);
  });

  it('finds nothing in an empty set', () => {
    const set = new PatternSet([]);
    expect(set.replace('anything', '#')).toBe('anything');
    expect(set.pendingSuffix('anything')).toBe(0);
  });
});
