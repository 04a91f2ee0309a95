import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { currentInstanceId, instanceDirName } from '../runtime/index.ts';
import { debianMirrors, parseAptSources, removeAbandonedRootfs } from './debootstrap.ts';

const deb822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`;

const nodesource = `Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
`;

describe('apt sources', () => {
  it('reads deb822 stanzas', () => {
    expect(parseAptSources(deb822)).toEqual([
      {
        uris: ['http://mirror.example/debian'],
        suites: ['bookworm', 'bookworm-updates'],
        components: ['main'],
      },
      {
        uris: ['http://mirror.example/debian-security'],
        suites: ['bookworm-security'],
        components: ['main'],
      },
    ]);
  });

  it('reads one-line sources, options and comments included', () => {
    const text =
      '# deb http://old/debian bookworm main\ndeb [arch=amd64] http://m/debian/ bookworm main contrib\n';
    expect(parseAptSources(text)).toEqual([
      { uris: ['http://m/debian/'], suites: ['bookworm'], components: ['main', 'contrib'] },
    ]);
  });

  it("picks the host's Debian mirrors and ignores third-party repositories", () => {
    const sources = [...parseAptSources(nodesource), ...parseAptSources(deb822)];
    expect(debianMirrors(sources)).toEqual({
      mirror: 'http://mirror.example/debian',
      security: 'http://mirror.example/debian-security',
    });
  });

  it('falls back to deb.debian.org', () => {
    expect(debianMirrors([])).toEqual({
      mirror: 'http://deb.debian.org/debian',
      security: 'http://deb.debian.org/debian-security',
    });
  });
});

describe('removeAbandonedRootfs', () => {
  it("removes the root filesystems of builds that are gone, and keeps a live build's", async () => {
    const scratch = await mkdtemp(join(tmpdir(), 'grexal-rootfs-test-'));
    const saved = process.env['TMPDIR'];
    process.env['TMPDIR'] = scratch;
    try {
      const live = `grexal-rootfs-${instanceDirName(currentInstanceId())}.aaaaaa`;
      // pid 1's start time is never 1: a build that ran under a recycled pid counts as gone.
      const dead = ['grexal-rootfs-1-1.bbbbbb', 'grexal-rootfs-Xy12Zq'];
      for (const name of [live, ...dead, 'unrelated-dir'])
        await mkdir(join(scratch, name, 'etc'), { recursive: true });
      const removed: string[] = [];
      await removeAbandonedRootfs((line) => removed.push(line));
      expect((await readdir(scratch)).sort()).toEqual([live, 'unrelated-dir'].sort());
      expect(removed).toHaveLength(2);
    } finally {
      if (saved === undefined) delete process.env['TMPDIR'];
      else process.env['TMPDIR'] = saved;
      await rm(scratch, { recursive: true, force: true });
    }
  });
});
