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

  it('refuses env names that belong to the runner, the shell or a loader, each by its path', () => {
    try {
      resolveSandboxOptions({
        image: 'x',
        env: {
          LD_PRELOAD: '/tmp/x.so',
          NODE_OPTIONS: '--require /tmp/x',
          GREXAL_CTX_SOCK: '/tmp/s',
          HOME: '/',
          MY_FLAG: '1',
        },
      });
      expect.unreachable();
    } catch (error) {
      const problems = (error as ValidationError).problems;
      expect(problems.map((p) => `${p.code} ${p.path}`).sort()).toEqual([
        'E_ENV_NAME_RESERVED env.GREXAL_CTX_SOCK',
        'E_ENV_NAME_RESERVED env.HOME',
        'E_ENV_NAME_RESERVED env.LD_PRELOAD',
        'E_ENV_NAME_RESERVED env.NODE_OPTIONS',
      ]);
      expect(problems.every((p) => p.fix?.includes('reserved list'))).toBe(true);
    }
    expect(resolveSandboxOptions({ image: 'x', env: { MY_FLAG: '1' } }).env).toEqual({ MY_FLAG: '1' });
  });

  describe('tmpfs sizes', () => {
    const MiB = 1024 * 1024;
    const problemsOf = (limits: Record<string, unknown>, extra: Record<string, unknown> = {}) => {
      try {
        resolveSandboxOptions({ image: 'x', ...extra, limits });
        return [];
      } catch (error) {
        return (error as ValidationError).problems.map((p) => `${p.code} ${p.path} ${p.message}`);
      }
    };

    it('documents its defaults in the resolved limits, larger for desktops', () => {
      expect(DEFAULT_LIMITS).toMatchObject({ tmpBytes: 64 * MiB, homeBytes: 64 * MiB, shmBytes: 64 * MiB });
      expect(DEFAULT_DESKTOP_LIMITS).toMatchObject({
        tmpBytes: 256 * MiB,
        homeBytes: 512 * MiB,
        shmBytes: 512 * MiB,
      });
    });

    it('takes sizes within bounds, the others staying at their defaults', () => {
      const { limits } = resolveSandboxOptions({
        image: 'x',
        limits: { tmpBytes: 200 * MiB, shmBytes: MiB },
      });
      expect(limits).toMatchObject({ tmpBytes: 200 * MiB, homeBytes: 64 * MiB, shmBytes: MiB });
    });

    it('refuses sizes under 1 MiB, over 1 TiB or not whole bytes, naming the mount', () => {
      expect(problemsOf({ tmpBytes: MiB - 1, homeBytes: 2 ** 41, shmBytes: 1.5 * MiB + 0.5 })).toEqual([
        'E_LIMIT_INVALID limits.tmpBytes The /tmp tmpfs size is outside 1 MiB..1 TiB.',
        'E_LIMIT_INVALID limits.homeBytes The /home/agent tmpfs size is outside 1 MiB..1 TiB.',
        expect.stringMatching(/^E_FIELD_TYPE limits.shmBytes/),
      ]);
    });

    it('refuses a size over the memory limit with the reason, counted against the default memory too', () => {
      const [problem, ...rest] = problemsOf({ memoryBytes: 128 * MiB, homeBytes: 256 * MiB });
      expect(rest).toEqual([]);
      expect(problem).toContain(
        'E_LIMIT_INVALID limits.homeBytes 256 MiB is over the memory limit of 128 MiB',
      );
      expect(problem).toContain('tmpfs pages count against the memory limit');
      expect(problemsOf({ shmBytes: 2048 * MiB })).toEqual([expect.stringContaining('limits.shmBytes')]);
      expect(problemsOf({ shmBytes: 2048 * MiB }, { desktop: true })).toEqual([]);
    });

    it('accepts mounts that together exceed the memory limit: sizes are ceilings, not reservations', () => {
      expect(problemsOf({ memoryBytes: 128 * MiB, tmpBytes: 100 * MiB, homeBytes: 100 * MiB })).toEqual([]);
      // The defaults (208 MiB in all) never refuse a small memory limit.
      expect(problemsOf({ memoryBytes: 64 * MiB })).toEqual([]);
    });
  });
});
