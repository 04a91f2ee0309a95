import { describe, expect, it } from 'vitest';
import { findExecutable, firstExecutable } from './executable.ts';

describe('firstExecutable', () => {
  it('takes the first directory that has it, skipping empty entries', () => {
    const present = new Set(['/b/tool', '/c/tool']);
    expect(firstExecutable('tool', ['', '/a', '/b', '/c'], (f) => present.has(f))).toBe('/b/tool');
    expect(firstExecutable('tool', ['/a', ''], (f) => present.has(f))).toBeUndefined();
  });
});

describe('findExecutable', () => {
  it('finds an executable on PATH and misses an unknown one', () => {
    expect(findExecutable('sh', '/bin:/usr/bin')).toMatch(/\/sh$/);
    expect(findExecutable('grexal-no-such-tool', '/bin')).toBeUndefined();
  });

  it('looks in the sbin directories when PATH lacks them', () => {
    expect(findExecutable('ip', '/nowhere')).toMatch(/^\/(usr\/)?s?bin\/ip$/);
  });
});
