import { describe, expect, it } from 'vitest';
import { debianMirrors, parseAptSources } from './debootstrap.ts';

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
