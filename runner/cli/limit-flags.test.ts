import { describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { parseLimitFlags } from './limit-flags.ts';

describe('parseLimitFlags', () => {
  it('turns flags into numeric limits', () => {
    expect(parseLimitFlags({ memory: '512m', cpus: '0.5', pids: '128', timeout: '30s' })).toEqual({
      memoryBytes: 512 * 1024 ** 2,
      cpus: 0.5,
      pidsLimit: 128,
      timeoutMs: 30_000,
    });
  });

  it('names every bad flag at once', () => {
    try {
      parseLimitFlags({ memory: '-1', cpus: '0', timeout: 'soon' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(ValidationError);
      expect((error as ValidationError).problems.map((p) => p.path)).toEqual([
        '--memory',
        '--cpus',
        '--timeout',
      ]);
      expect((error as ValidationError).problems.every((p) => p.code === 'E_LIMIT_INVALID' && p.fix)).toBe(
        true,
      );
    }
  });

  it('turns tmpfs size flags into bytes, and names a bad one', () => {
    expect(parseLimitFlags({ 'tmp-size': '128m', 'home-size': '1g', 'shm-size': '256mb' })).toEqual({
      tmpBytes: 128 * 1024 ** 2,
      homeBytes: 1024 ** 3,
      shmBytes: 256 * 1024 ** 2,
    });
    try {
      parseLimitFlags({ 'tmp-size': 'lots' });
      expect.unreachable();
    } catch (error) {
      expect((error as ValidationError).problems.map((p) => `${p.code} ${p.path}`)).toEqual([
        'E_LIMIT_INVALID --tmp-size',
      ]);
    }
  });
});
