/**
 * Loads the CLI's bundle (one CommonJS file) with a V8 code cache, so that a `grexal` command does
 * not compile its modules again at every start: ~35 ms of CPU of a cold `grexal run` (Node 20 has
 * no compile cache for ES modules; `vm.Script`'s `cachedData` is the one it has for scripts).
 *
 * The cache is the compiled code of the last run (made after the command ran, so it holds the
 * functions that run used), in `$XDG_CACHE_HOME/grexal` (else `~/.cache/grexal`). Compiled code is
 * code: it is read only from a directory and a file owned by this user that nobody else may write,
 * and its name holds the bundle's identity (device, inode, size, change and modification times)
 * and the Node version, so a rebuilt bundle or another Node never meets an old cache (V8 itself
 * checks little more than the source's length). Any failure means compiling as before.
 * Node built-ins only: this runs before the bundle is loaded.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  type Stats,
  statSync,
  writeFileSync,
} from 'node:fs';
import Module, { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import vm from 'node:vm';

const PREFIX = 'cli-';
const SUFFIX = '.v8';

export interface LoadedBundle {
  /** The bundle's `module.exports`. */
  exports: Record<string, unknown>;
  /** Whether compiled code from the cache was used. */
  cached: boolean;
  /** Writes the cache when there was none (or V8 refused it); call after the command ran. */
  save(): void;
}

/** Where the cache lives: `$XDG_CACHE_HOME/grexal`, else `~/.cache/grexal`; undefined without either. */
export function cacheDirectory(
  env: NodeJS.ProcessEnv = process.env,
  home = safeHomedir(),
): string | undefined {
  const base = env['XDG_CACHE_HOME'] || (home ? join(home, '.cache') : undefined);
  return base ? join(base, 'grexal') : undefined;
}

/**
 * The cache file's name for one command (each caches what it compiled: `run`'s is made by a
 * `run`) of one build of the bundle on one Node.
 */
export function cacheName(
  command: string,
  bundle: Stats,
  runtime = `${process.version}-${process.arch}`,
): string {
  const identity = [bundle.dev, bundle.ino, bundle.size, bundle.ctimeMs, bundle.mtimeMs, runtime].join(':');
  const digest = createHash('sha256').update(identity).digest('hex').slice(0, 32);
  return `${commandPrefix(command)}${digest}${SUFFIX}`;
}

/** A command name as it may appear in a file name; anything else shares one cache. */
function commandPrefix(command: string): string {
  return `${PREFIX}${/^[a-z][a-z-]{0,15}$/.test(command) ? command : 'other'}-`;
}

/** Only this user may have written it: owned by us, no write bit for group or others, not a link. */
export function trustworthy(stats: Stats, kind: 'file' | 'directory', uid = process.getuid?.()): boolean {
  const right = kind === 'file' ? stats.isFile() : stats.isDirectory();
  return right && (uid === undefined || stats.uid === uid) && (stats.mode & 0o022) === 0;
}

/** Loads `file` for `command` (the cache is per command). */
export function loadWithCodeCache(file: string, command: string, directory = cacheDirectory()): LoadedBundle {
  const source = readFileSync(file, 'utf8');
  const cacheFile = directory === undefined ? undefined : join(directory, cacheName(command, statSync(file)));
  const cachedData = cacheFile === undefined ? undefined : readTrusted(directory!, cacheFile);
  const script = new vm.Script(Module.wrap(source), {
    filename: file,
    cachedData,
    // The bundle has no import() of its own (esbuild makes its lazy imports requires); kept usable.
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  const module = { exports: {} as Record<string, unknown> };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper.call(module.exports, module.exports, createRequire(file), module, file, dirname(file));
  const cached = cachedData !== undefined && !script.cachedDataRejected;
  return {
    exports: module.exports,
    cached,
    save: () => {
      if (cached || cacheFile === undefined) return;
      try {
        writeCache(directory!, cacheFile, commandPrefix(command), script.createCachedData());
      } catch {
        // A read-only or foreign home: the next run compiles again, as without a cache.
      }
    },
  };
}

function readTrusted(directory: string, file: string): Buffer | undefined {
  try {
    if (!trustworthy(lstatSync(directory), 'directory')) return undefined;
    // Opened, then checked: what is read is what was checked.
    const fd = openSync(file, 'r');
    try {
      if (!trustworthy(fstatSync(fd), 'file') || lstatSync(file).isSymbolicLink()) return undefined;
      return readFileSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
}

function writeCache(directory: string, file: string, prefix: string, data: Buffer): void {
  mkdirSync(directory, { recursive: true, mode: 0o700 });
  if (!trustworthy(lstatSync(directory), 'directory')) return;
  // This command's caches of earlier builds: only the newest is any use.
  for (const name of readdirSync(directory)) {
    const ours = name.startsWith(prefix) && (name.endsWith(SUFFIX) || name.endsWith('.tmp'));
    if (ours && join(directory, name) !== file) rmSync(join(directory, name), { force: true });
  }
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, data, { mode: 0o600, flag: 'wx' });
  renameSync(temporary, file);
}

function safeHomedir(): string | undefined {
  try {
    return homedir() || undefined;
  } catch {
    return undefined;
  }
}
