/**
 * The offline base image: `debootstrap --variant=minbase bookworm` from the host's own Debian
 * mirror, trimmed like Debian's slim images, streamed into the engine as a root filesystem tar.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { GrexalError } from '../errors.ts';
import { currentInstanceId, instanceDirName, isInstanceAlive } from '../runtime/index.ts';

export const SUITE = 'bookworm';
/** Downloaded .debs are kept here so a second bootstrap needs no network and takes seconds. */
export const DEB_CACHE = '/var/cache/grexal/debootstrap-debs';
const FALLBACK_MIRROR = 'http://deb.debian.org/debian';
const FALLBACK_SECURITY = 'http://deb.debian.org/debian-security';
const DEBIAN_SUITES = /^(bullseye|bookworm|trixie|forky|sid|oldstable|stable|testing|unstable)$/;

export interface AptSource {
  uris: string[];
  suites: string[];
  components: string[];
}

/** Parses one-line (`deb URI suite comp…`) and deb822 (`URIs:`/`Suites:`) apt sources. */
export function parseAptSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  const lines = text.split('\n').map((l) => l.replace(/#.*/, '').trim());
  if (lines.some((l) => /^(URIs|Suites):/i.test(l))) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string): string[] =>
        (stanza.match(new RegExp(`^${name}:\\s*(.*)$`, 'im'))?.[1] ?? '').trim().split(/\s+/).filter(Boolean);
      const enabled = !/^Enabled:\s*no/im.test(stanza);
      if (enabled && field('Types').includes('deb')) {
        sources.push({ uris: field('URIs'), suites: field('Suites'), components: field('Components') });
      }
    }
    return sources;
  }
  for (const line of lines) {
    const parts = line.replace(/\[[^\]]*\]/, '').split(/\s+/);
    if (parts[0] !== 'deb' || parts.length < 3) continue;
    sources.push({ uris: [parts[1] ?? ''], suites: [parts[2] ?? ''], components: parts.slice(3) });
  }
  return sources;
}

/** The host's Debian archive and security mirrors; deb.debian.org where the host names none. */
export function debianMirrors(sources: AptSource[]): { mirror: string; security: string } {
  let mirror: string | undefined;
  let security: string | undefined;
  for (const s of sources) {
    const uri = s.uris[0]?.replace(/\/+$/, '');
    if (!uri || !s.components.includes('main')) continue;
    if (!security && s.suites.some((x) => x.endsWith('-security'))) security = uri;
    if (!mirror && !uri.includes('security') && s.suites.some((x) => DEBIAN_SUITES.test(x))) mirror = uri;
  }
  return { mirror: mirror ?? FALLBACK_MIRROR, security: security ?? FALLBACK_SECURITY };
}

export function hostMirrors(): { mirror: string; security: string } {
  const texts: string[] = [];
  if (existsSync('/etc/apt/sources.list')) texts.push(readFileSync('/etc/apt/sources.list', 'utf8'));
  const dir = '/etc/apt/sources.list.d';
  for (const name of existsSync(dir) ? readdirSync(dir).sort() : []) {
    if (name.endsWith('.list') || name.endsWith('.sources'))
      texts.push(readFileSync(join(dir, name), 'utf8'));
  }
  return debianMirrors(texts.flatMap(parseAptSources));
}

/** Runs a command, handing each output line to `onLine`; rejects with the last lines on failure. */
export function runLines(
  cmd: string,
  args: string[],
  onLine: (line: string) => void,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      signal,
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    const tail: string[] = [];
    const take = (line: string): void => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
      onLine(line);
    };
    createInterface({ input: child.stdout }).on('line', take);
    createInterface({ input: child.stderr }).on('line', take);
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) return resolve();
      reject(
        new Error(
          `\`${cmd} ${args.join(' ')}\` exited with ${code}:\n${tail.map((l) => `    ${l}`).join('\n')}`,
        ),
      );
    });
  });
}

/** Like Debian's official slim images: no docs, man pages or translations in later installs either. */
const DPKG_EXCLUDES = `path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
`;
const APT_CLEAN = `DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
`;

function aptSources(m: { mirror: string; security: string }): string {
  const stanza = (uri: string, suites: string): string =>
    `Types: deb\nURIs: ${uri}\nSuites: ${suites}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`;
  return `${stanza(m.mirror, `${SUITE} ${SUITE}-updates`)}\n${stanza(m.security, `${SUITE}-security`)}`;
}

async function emptyDir(path: string, keep: (name: string) => boolean = () => false): Promise<void> {
  const names = await readdir(path).catch(() => [] as string[]);
  await Promise.all(
    names.filter((n) => !keep(n)).map((n) => rm(join(path, n), { recursive: true, force: true })),
  );
}

/** Trims the fresh root filesystem and points apt at the host's mirrors. */
export async function tidyRootfs(dir: string, mirrors: { mirror: string; security: string }): Promise<void> {
  await writeFile(join(dir, 'etc/apt/sources.list.d/debian.sources'), aptSources(mirrors));
  await rm(join(dir, 'etc/apt/sources.list'), { force: true });
  await mkdir(join(dir, 'etc/dpkg/dpkg.cfg.d'), { recursive: true });
  await writeFile(join(dir, 'etc/dpkg/dpkg.cfg.d/docker'), DPKG_EXCLUDES);
  await writeFile(join(dir, 'etc/apt/apt.conf.d/docker-clean'), APT_CLEAN);
  for (const sub of [
    'var/lib/apt/lists',
    'var/cache/apt/archives',
    'usr/share/man',
    'usr/share/info',
    'var/log',
  ]) {
    await emptyDir(join(dir, sub), (n) => n === 'partial' || n === 'lock');
  }
  await emptyDir(join(dir, 'usr/share/locale'), (n) => n === 'locale.alias');
  for (const pkg of await readdir(join(dir, 'usr/share/doc')).catch(() => [] as string[])) {
    await emptyDir(join(dir, 'usr/share/doc', pkg), (n) => n === 'copyright');
  }
  // The engine provides these at run time; device nodes in an image only cause trouble.
  for (const sub of ['dev', 'proc', 'sys', 'run', 'tmp']) await emptyDir(join(dir, sub));
  await rm(join(dir, 'var/cache/apt/pkgcache.bin'), { force: true });
  await rm(join(dir, 'var/cache/apt/srcpkgcache.bin'), { force: true });
  await writeFile(join(dir, 'etc/machine-id'), '');
}

function onPath(name: string): boolean {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/sbin']);
  return dirs.some((d) => d && existsSync(join(d, name)));
}

/** Installs debootstrap from the host's apt sources when it is missing (`apt-get update` only if needed). */
async function ensureDebootstrap(log: (line: string) => void, signal?: AbortSignal): Promise<void> {
  if (onPath('debootstrap')) return;
  const quiet = (): void => {};
  log('installing debootstrap with apt-get');
  try {
    await runLines('apt-cache', ['show', 'debootstrap'], quiet, signal).catch(() =>
      runLines('apt-get', ['update'], quiet, signal),
    );
    await runLines('apt-get', ['install', '-y', '--no-install-recommends', 'debootstrap'], quiet, signal);
  } catch (error) {
    throw new GrexalError(
      'E_IMAGE_BUILD_FAILED',
      `Installing debootstrap failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}

/** Temporary root filesystems are named after the build's process: `grexal-rootfs-<pid>-<start>.XXXXXX`. */
const ROOTFS_PREFIX = 'grexal-rootfs-';

/**
 * A build killed half-way (SIGKILL, a lost terminal) leaves its root filesystem behind, some
 * 300 MB: the next bootstrap removes those of processes that are gone, so a rerun recovers alone.
 */
export async function removeAbandonedRootfs(log: (line: string) => void): Promise<void> {
  const entries = await readdir(tmpdir()).catch(() => [] as string[]);
  for (const entry of entries) {
    if (!entry.startsWith(ROOTFS_PREFIX)) continue;
    const owner = entry.slice(ROOTFS_PREFIX.length).split('.')[0] ?? '';
    if (isInstanceAlive(`${hostname()}/${owner}`)) continue;
    log(`removing ${join(tmpdir(), entry)}, left by an interrupted bootstrap`);
    await rm(join(tmpdir(), entry), { recursive: true, force: true });
  }
}

export interface Bootstrap {
  dir: string;
  /** The root filesystem as a tar stream, a promise of tar's success, and a way to stop it. */
  tar(): { stream: Readable; done: Promise<void>; kill: () => void };
  cleanup(): Promise<void>;
}

/** debootstrap into a fresh temporary directory (never inside the repository). */
export async function debootstrap(options: {
  log: (line: string) => void;
  signal?: AbortSignal;
}): Promise<Bootstrap> {
  if (process.getuid?.() !== 0) {
    throw new GrexalError(
      'E_IMAGE_BUILD_FAILED',
      'No registry answered for debian:bookworm-slim and the offline bootstrap (debootstrap) needs root. Run `grexal images build` as root, or make the registry reachable.',
    );
  }
  await ensureDebootstrap(options.log, options.signal);
  const mirrors = hostMirrors();
  await removeAbandonedRootfs(options.log);
  const dir = await mkdtemp(join(tmpdir(), `${ROOTFS_PREFIX}${instanceDirName(currentInstanceId())}.`));
  const cleanup = (): Promise<void> => rm(dir, { recursive: true, force: true });
  try {
    await mkdir(DEB_CACHE, { recursive: true });
    options.log(`debootstrap --variant=minbase ${SUITE} from ${mirrors.mirror} into ${dir}`);
    const args = ['--variant=minbase', `--cache-dir=${DEB_CACHE}`, SUITE, dir, mirrors.mirror];
    // Per-package lines (hundreds) are left out; the phases are enough to see it moving.
    const noisy = /^I: (Retrieving|Validating|Extracting|Unpacking|Configuring) (?!the )/;
    let packageSteps = 0;
    const onLine = (line: string): void => {
      if (!noisy.test(line)) options.log(line);
      else if (++packageSteps % 50 === 0) options.log(`… ${packageSteps} package steps done`);
    };
    await runLines('debootstrap', args, onLine, options.signal);
    await tidyRootfs(dir, mirrors);
  } catch (error) {
    await cleanup();
    if (error instanceof GrexalError) throw error;
    throw new GrexalError('E_IMAGE_BUILD_FAILED', `debootstrap failed: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return {
    dir,
    cleanup,
    tar: () => {
      const child = spawn('tar', ['--numeric-owner', '--xattrs', '-C', dir, '-cf', '-', '.'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const done = new Promise<void>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (code) =>
          code === 0 ? resolve() : reject(new Error(`tar exited ${code}: ${stderr}`)),
        );
      });
      return { stream: child.stdout, done, kill: () => child.kill('SIGKILL') };
    },
  };
}
