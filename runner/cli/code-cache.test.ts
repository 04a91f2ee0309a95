import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { cacheDirectory, cacheName, loadWithCodeCache, trustworthy } from './code-cache.ts';

// V8 keeps what one process compiled and would not even look at a cache for the same source
// again: whether a cache is used is seen only in a process of its own, as in the CLI.
let driverDir: string;
let driver: string;
beforeAll(() => {
  driverDir = mkdtempSync(join(tmpdir(), 'code-cache-driver-'));
  driver = join(driverDir, 'driver.mjs');
  buildSync({
    stdin: {
      contents: `import { loadWithCodeCache } from './code-cache.ts';
const [bundle, command, cache] = process.argv.slice(2);
const loaded = loadWithCodeCache(bundle, command, cache);
loaded.save();
process.stdout.write(JSON.stringify({ cached: loaded.cached, value: loaded.exports.value }));`,
      resolveDir: import.meta.dirname,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile: driver,
    logLevel: 'warning',
  });
});
afterAll(() => rmSync(driverDir, { recursive: true, force: true }));

/** Loads the bundle in a new process, saves the cache there, and tells whether it used one. */
function loadInProcess(command = 'run'): { cached: boolean; value: string } {
  const child = spawnSync(process.execPath, [driver, bundle, command, cache], { encoding: 'utf8' });
  if (child.status !== 0) throw new Error(child.stderr);
  return JSON.parse(child.stdout) as { cached: boolean; value: string };
}

let dir: string;
let bundle: string;
let cache: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'code-cache-'));
  bundle = join(dir, 'bundle.cjs');
  cache = join(dir, 'cache');
  writeBundle('one');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function writeBundle(value: string): void {
  writeFileSync(bundle, `exports.value = ${JSON.stringify(value)};\nexports.add = (a, b) => a + b;\n`);
}

describe('cacheDirectory', () => {
  it('is $XDG_CACHE_HOME/grexal, else ~/.cache/grexal, else none', () => {
    expect(cacheDirectory({ XDG_CACHE_HOME: '/x/cache' }, '/home/u')).toBe('/x/cache/grexal');
    expect(cacheDirectory({}, '/home/u')).toBe('/home/u/.cache/grexal');
    expect(cacheDirectory({}, '')).toBeUndefined();
  });
});

describe('cacheName', () => {
  it('changes with the command, the bundle and the Node version', () => {
    const stats = statSync(bundle);
    const name = cacheName('run', stats, 'v20-x64');
    expect(name).toMatch(/^cli-run-[0-9a-f]{32}\.v8$/);
    expect(cacheName('serve', stats, 'v20-x64')).not.toBe(name);
    expect(cacheName('run', stats, 'v22-x64')).not.toBe(name);
    utimesSync(bundle, new Date(), new Date(Date.now() + 5_000));
    expect(cacheName('run', statSync(bundle), 'v20-x64')).not.toBe(name);
  });

  it('never puts what the user typed into a file name', () => {
    expect(cacheName('../../etc', statSync(bundle))).toMatch(/^cli-other-/);
    expect(cacheName('', statSync(bundle))).toMatch(/^cli-other-/);
  });
});

describe('trustworthy', () => {
  it('refuses what another user owns or others may write', () => {
    const file = join(dir, 'f');
    writeFileSync(file, '', { mode: 0o600 });
    const uid = statSync(file).uid;
    expect(trustworthy(statSync(file), 'file', uid)).toBe(true);
    expect(trustworthy(statSync(file), 'file', uid + 1)).toBe(false);
    expect(trustworthy(statSync(file), 'directory', uid)).toBe(false);
    chmodSync(file, 0o620);
    expect(trustworthy(statSync(file), 'file', uid)).toBe(false);
    chmodSync(file, 0o602);
    expect(trustworthy(statSync(file), 'file', uid)).toBe(false);
  });
});

describe('loadWithCodeCache', () => {
  it('compiles the first time, writes the cache once the command ran, then uses it', () => {
    expect(loadInProcess()).toEqual({ cached: false, value: 'one' });
    const [name] = readdirSync(cache);
    expect(name).toMatch(/^cli-run-.*\.v8$/);
    expect(statSync(join(cache, name!)).mode & 0o777).toBe(0o600);
    expect(statSync(cache).mode & 0o777).toBe(0o700);
    expect(loadInProcess()).toEqual({ cached: true, value: 'one' });
    // Each command has its own.
    expect(loadInProcess('serve')).toEqual({ cached: false, value: 'one' });
  });

  it('a rebuilt bundle gets a cache of its own and the old one goes', () => {
    loadInProcess('run');
    loadInProcess('serve');
    writeBundle('two');
    utimesSync(bundle, new Date(), new Date(Date.now() + 5_000));
    expect(loadInProcess()).toEqual({ cached: false, value: 'two' });
    const names = readdirSync(cache);
    expect(names.filter((n) => n.startsWith('cli-run-'))).toEqual([cacheName('run', statSync(bundle))]);
    // Another command's cache is its own business.
    expect(names.filter((n) => n.startsWith('cli-serve-'))).toHaveLength(1);
    expect(loadInProcess()).toEqual({ cached: true, value: 'two' });
  });

  it('does not read a cache that others could have written', () => {
    loadInProcess();
    const file = join(cache, cacheName('run', statSync(bundle)));
    chmodSync(file, 0o666);
    expect(loadInProcess().cached).toBe(false);
    chmodSync(file, 0o600);
    chmodSync(cache, 0o777);
    expect(loadInProcess().cached).toBe(false);
  });

  it('garbage in the cache is refused by V8 and replaced', () => {
    loadInProcess();
    writeFileSync(join(cache, cacheName('run', statSync(bundle))), 'not compiled code');
    expect(loadInProcess()).toEqual({ cached: false, value: 'one' });
    expect(loadInProcess()).toEqual({ cached: true, value: 'one' });
  });

  it('runs without a cache where none can be kept', () => {
    const loaded = loadWithCodeCache(bundle, 'run', undefined);
    expect(loaded.exports['value']).toBe('one');
    loaded.save();
    writeFileSync(join(dir, 'not-a-dir'), '');
    const blocked = loadWithCodeCache(bundle, 'run', join(dir, 'not-a-dir', 'cache'));
    expect(blocked.exports['value']).toBe('one');
    expect(() => blocked.save()).not.toThrow();
  });
});
