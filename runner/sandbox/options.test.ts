import { describe, expect, it } from 'vitest';
import type { ValidationError } from '../errors.ts';
import { DEFAULT_DESKTOP_LIMITS, DEFAULT_LIMITS, resolveSandboxOptions } from './options.ts';

describe('resolveSandboxOptions', () => {
  it('fills defaults, bigger for desktops', () => {
    expect(resolveSandboxOptions({ image: 'grexal/agent' }).limits).toEqual(DEFAULT_LIMITS);
    const desktop = resolveSandboxOptions({ image: 'grexal/desktop', desktop: true });
    expect(desktop.limits).toEqual(DEFAULT_DESKTOP_LIMITS);
    expect(desktop.desktop).toEqual({ width: 1280, height: 800 });
  });

  it('converts CPUs to Docker nano-CPUs', () => {
    expect(resolveSandboxOptions({ image: 'x', limits: { cpus: 0.5 } }).limits.nanoCpus).toBe(5e8);
  });

  it('refuses bad limits and unknown fields with paths', () => {
    try {
      resolveSandboxOptions({
        image: 'x',
        limits: { memoryBytes: -1, cpus: 0, timeoutMs: 5 },
        surprise: true,
      });
      expect.unreachable();
    } catch (error) {
      const problems = (error as ValidationError).problems;
      expect(problems.map((p) => `${p.code} ${p.path}`).sort()).toEqual([
        'E_FIELD_UNKNOWN ',
        'E_LIMIT_INVALID limits.cpus',
        'E_LIMIT_INVALID limits.memoryBytes',
        'E_LIMIT_INVALID limits.timeoutMs',
      ]);
    }
  });

  it('refuses an image that is not a reference, and NUL or lone surrogates in argv and env', () => {
    try {
      resolveSandboxOptions({
        image: '../../127.0.0.1:1/x',
        command: ['echo', 'a\0b', '\ud800'],
        env: { A: 'x\0', B: 'ok' },
      });
      expect.unreachable();
    } catch (error) {
      const problems = (error as ValidationError).problems;
      expect(problems.map((p) => `${p.code} ${p.path}`).sort()).toEqual([
        'E_IMAGE_REFERENCE_INVALID image',
        'E_STRING_UNENCODABLE command[1]',
        'E_STRING_UNENCODABLE command[2]',
        'E_STRING_UNENCODABLE env.A',
      ]);
      expect(problems.every((p) => p.fix)).toBe(true);
    }
  });
});
