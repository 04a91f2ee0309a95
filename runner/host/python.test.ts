import { describe, expect, it } from 'vitest';
import { findPython, SYSTEM_PYTHON } from './python.ts';

describe('findPython', () => {
  it("prefers the distribution's python3 over a shim earlier on PATH", () => {
    const present = new Set([SYSTEM_PYTHON, '/root/.pyenv/shims/python3']);
    expect(findPython('/root/.pyenv/shims:/usr/bin', (f) => present.has(f))).toBe(SYSTEM_PYTHON);
  });

  it('falls back to the first python3 on PATH', () => {
    const present = new Set(['/opt/py/bin/python3', '/usr/local/bin/python3']);
    expect(findPython('/nowhere::/opt/py/bin:/usr/local/bin', (f) => present.has(f))).toBe(
      '/opt/py/bin/python3',
    );
  });

  it('finds none on a host without python3', () => {
    expect(findPython('/usr/bin:/bin', () => false)).toBeUndefined();
  });
});
