import { describe, expect, it, vi } from 'vitest';
import { mountRunDirTmpfs, runDirMountsIn } from './run-dir-mount.ts';

const table = [
  '22 27 0:21 / /proc rw,relatime - proc proc rw',
  '90 27 0:50 / /state/host-1/sbx_a rw,nosuid,nodev,noexec - tmpfs grexal-run rw,size=1024k',
  '91 27 0:51 / /state/host-1/sbx_b rw shared:5 - tmpfs grexal-run rw,size=1024k',
  '92 27 0:52 / /state/host-10/sbx_c rw - tmpfs grexal-run rw',
  '93 27 0:53 / /state/host-1/other rw - tmpfs tmpfs rw',
  '94 27 0:54 / /state/host-1/with\\040space rw - tmpfs grexal-run rw',
  '95 27 0:55 / /state/host-1/sbx_d rw - ext4 grexal-run rw',
].join('\n');

describe('runDirMountsIn', () => {
  it('finds our tmpfs mounts under a directory only, with escaped names decoded', () => {
    expect(runDirMountsIn(table, '/state/host-1')).toEqual([
      '/state/host-1/sbx_a',
      '/state/host-1/sbx_b',
      '/state/host-1/with space',
    ]);
  });

  it('finds a mount at the directory itself, and nothing in an empty table', () => {
    expect(runDirMountsIn(table, '/state/host-10/sbx_c')).toEqual(['/state/host-10/sbx_c']);
    expect(runDirMountsIn('', '/state')).toEqual([]);
  });
});

describe('mountRunDirTmpfs without root', () => {
  it('mounts nothing and says so once, with the fix', async () => {
    const getuid = vi.spyOn(process, 'getuid').mockReturnValue(1000);
    const warnings: unknown[] = [];
    const logger = { warn: (fields: unknown, message: string) => warnings.push([fields, message]) };
    try {
      expect(await mountRunDirTmpfs('/nonexistent/a', logger as never)).toBe(false);
      expect(await mountRunDirTmpfs('/nonexistent/b', logger as never)).toBe(false);
    } finally {
      getuid.mockRestore();
    }
    expect(warnings).toHaveLength(1);
    expect(JSON.stringify(warnings[0])).toContain('GREXAL_STATE_DIR');
    expect(JSON.stringify(warnings[0])).toContain('not root');
  });
});
