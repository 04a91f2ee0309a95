/**
 * The interpreter of the runner's python3 helpers (stdlib only, run as the runner's user, root).
 * The distribution's /usr/bin/python3 when there is one, rather than the first `python3` on PATH:
 * a version manager's shim there (pyenv's is a bash script that execs pyenv, then python) costs
 * ~50 ms of CPU per spawn, and a cold `grexal run` spawns up to three helpers on its start's
 * critical path; a root helper should not run whatever a PATH entry offers either.
 */
import { delimiter } from 'node:path';
import { firstExecutable, isExecutable } from './executable.ts';

export const SYSTEM_PYTHON = '/usr/bin/python3';

/**
 * The helpers' python3: `/usr/bin/python3` if executable, else the first on `path`; undefined
 * when there is none (the callers then take their paths without a helper).
 */
export function findPython(
  path: string = process.env['PATH'] ?? '',
  executable: (file: string) => boolean = isExecutable,
): string | undefined {
  if (executable(SYSTEM_PYTHON)) return SYSTEM_PYTHON;
  return firstExecutable('python3', path.split(delimiter), executable);
}

let found: { python: string | undefined } | undefined;

/** findPython(), looked up once per process. */
export function python3(): string | undefined {
  found ??= { python: findPython() };
  return found.python;
}
