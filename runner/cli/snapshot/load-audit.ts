/**
 * What the run bundle's load reads of the machine while its startup snapshot is built: whatever a
 * module reads at its load is frozen into the blob, and a later run would see the builder's value
 * (its environment, host name, clock, random numbers) instead of its own.
 *
 * Watched while the bundle loads in the builder, then removed: every environment variable read (its
 * value is kept, and a run whose value differs does not use the snapshot: `changedSince`), and
 * the calls that answer with the host, the clock or randomness. Such a call fails the build, naming
 * the module, unless an entry of ALLOWED says why its frozen answer is never used.
 */
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import tty from 'node:tty';
import { fileURLToPath } from 'node:url';
import { startupSnapshot } from 'node:v8';

/** The environment the bundle's load saw; a run with another one loads the bundle itself. */
export interface FrozenEnvironment {
  /** Each variable read at load, with its value then. */
  variables: Record<string, string | undefined>;
  /** The `DEBUG_*` variables (debug's options), read by listing the environment. */
  debugOptions: Record<string, string>;
}

/** Frozen answers that nothing uses, by the module that asks (its path as esbuild's bundle names it). */
const ALLOWED: { module: string; calls: string[]; why: string }[] = [
  {
    module: 'node_modules/pino/',
    calls: ['os.hostname', 'Date.now'],
    why: "pino's default `base` (the runner gives its own) and the start of its nanosecond clock (a timestamp format the runner does not use)",
  },
  {
    module: 'node_modules/debug/',
    calls: ['tty.isatty', 'the environment listed'],
    why: "whether debug's output is coloured, and its DEBUG_* options (kept in debugOptions): they matter only with DEBUG set, a variable read at load, so such a run loads the bundle itself",
  },
];

const DEBUG_OPTION = /^debug_/i;
/** This module in the bundle: its own frames (the watching wrappers) are not the caller. */
const SELF = 'runner/cli/snapshot/load-audit.ts';

type Patch = [object, string];

/** Starts watching; `finish` stops, and throws if the load read something it must not have. */
export function watchLoad(bundle = fileURLToPath(import.meta.url)): { finish(): FrozenEnvironment } {
  const variables: Record<string, string | undefined> = {};
  let debugOptions: Record<string, string> = {};
  const problems: string[] = [];
  let watching = true;
  // Dropped at the end: its names are slices of the bundle's text, which the blob would keep.
  let modules: [number, string][] | undefined;
  const check = (label: string): boolean => {
    modules ??= moduleMap(bundle);
    const { module, stack } = caller(bundle, modules);
    // esbuild names a module by its real path from the checkout: `../x/node_modules/pino/…` when
    // node_modules is a link to another checkout's.
    const allowed = ALLOWED.some(
      (entry) =>
        entry.calls.includes(label) && module !== undefined && `/${module}`.includes(`/${entry.module}`),
    );
    if (!allowed) problems.push(`${module ?? 'an unknown module'}: ${label}\n${stack}`);
    return allowed;
  };

  const env = process.env;
  const envDescriptor = Object.getOwnPropertyDescriptor(process, 'env')!;
  const seen = (target: NodeJS.ProcessEnv, key: string | symbol) => {
    if (watching && typeof key === 'string' && !(key in variables)) variables[key] = target[key];
  };
  const watched = new Proxy(env, {
    get: (target, key) => {
      seen(target, key);
      return Reflect.get(target, key);
    },
    has: (target, key) => {
      seen(target, key);
      return Reflect.has(target, key);
    },
    ownKeys: (target) => {
      if (watching && check('the environment listed')) debugOptions = pickDebugOptions(target);
      return Reflect.ownKeys(target);
    },
  });
  Object.defineProperty(process, 'env', { ...envDescriptor, value: watched });

  const patches: [object, string, unknown][] = [];
  for (const [[owner, name], label] of [
    [[os, 'hostname'], 'os.hostname'],
    [[os, 'homedir'], 'os.homedir'],
    [[os, 'userInfo'], 'os.userInfo'],
    [[process, 'cwd'], 'process.cwd'],
    [[Date, 'now'], 'Date.now'],
    [[Math, 'random'], 'Math.random'],
    [[crypto, 'randomBytes'], 'crypto.randomBytes'],
    [[crypto, 'randomUUID'], 'crypto.randomUUID'],
    [[tty, 'isatty'], 'tty.isatty'],
  ] as [Patch, string][]) {
    const functions = owner as Record<string, (...args: unknown[]) => unknown>;
    const original = functions[name]!;
    patches.push([owner, name, original]);
    functions[name] = function (this: unknown, ...args: unknown[]) {
      // A module that kept the function itself at load calls this later: then it is the original.
      if (watching) check(label);
      return original.apply(this, args);
    };
  }

  return {
    finish() {
      watching = false;
      modules = undefined;
      Object.defineProperty(process, 'env', envDescriptor);
      for (const [owner, name, original] of patches.reverse())
        (owner as Record<string, unknown>)[name] = original;
      // debug reads DEBUG at its load: a watch that saw nothing started after the bundle loaded.
      if (!('DEBUG' in variables)) {
        problems.push(
          'the watch saw no DEBUG read: it must start before the bundle loads (snapshot/entry.ts)',
        );
      }
      if (problems.length > 0) {
        throw new Error(
          `The run bundle reads the machine at its load, which its startup snapshot would freeze:\n\n${problems.join('\n\n')}\n\nRead it inside a function, or add the module to ALLOWED in runner/cli/snapshot/load-audit.ts with why its frozen answer is never used.`,
        );
      }
      return { variables, debugOptions };
    },
  };
}

/** The variables whose value differs in `env` from the one the load saw (empty: the snapshot holds). */
export function changedSince(frozen: FrozenEnvironment, env: NodeJS.ProcessEnv = process.env): string[] {
  const changed = Object.entries(frozen.variables)
    .filter(([name, value]) => env[name] !== value)
    .map(([name]) => name);
  const now = pickDebugOptions(env);
  const names = new Set([...Object.keys(now), ...Object.keys(frozen.debugOptions)]);
  for (const name of names) if (now[name] !== frozen.debugOptions[name]) changed.push(name);
  return changed;
}

function pickDebugOptions(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter(
      (entry): entry is [string, string] => DEBUG_OPTION.test(entry[0]) && entry[1] !== undefined,
    ),
  );
}

/**
 * Where each module of the bundle starts: esbuild heads each with a comment naming its path
 * (`// node_modules/debug/src/node.js`), in the order they appear.
 */
function moduleMap(bundle: string): [number, string][] {
  const starts: [number, string][] = [];
  readFileSync(bundle, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      const header = /^\/\/ (\S+\.[cm]?[jt]s)$/.exec(line);
      if (header) starts.push([i + 1, header[1]!]);
    });
  return starts;
}

/** The module whose code made the watched call (its first frame in the bundle), and the stack. */
function caller(bundle: string, modules: [number, string][]): { module?: string; stack: string } {
  // The builder runs with no stack limit set (Node deletes it from a snapshot): set one to see.
  const had = Object.hasOwn(Error, 'stackTraceLimit');
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  const frames = (new Error().stack ?? '').split('\n').slice(3);
  if (had) Error.stackTraceLimit = limit;
  else delete (Error as { stackTraceLimit?: number }).stackTraceLimit;
  const module = frames
    .map((frame) => frame.split(`${bundle}:`)[1])
    .map((place) => place && modules.findLast(([start]) => start <= Number.parseInt(place, 10))?.[1])
    .find((name) => name !== undefined && name !== SELF);
  return { module, stack: frames.join('\n') };
}

/**
 * Started by this module's own load while the snapshot is built: the snapshot's entry imports it
 * first, so it watches the whole bundle's load. Undefined anywhere else.
 */
export const loadWatch = startupSnapshot.isBuildingSnapshot() ? watchLoad() : undefined;
