/** Executables on the host, looked up the way the runner's callers need them. */
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Whether `file` exists and this process may execute it. */
export function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first `dir/name` that is executable, in the order of `dirs` (empty entries skipped). */
export function firstExecutable(
  name: string,
  dirs: readonly string[],
  executable: (file: string) => boolean = isExecutable,
): string | undefined {
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    if (executable(candidate)) return candidate;
  }
  return undefined;
}

/** Finds an executable on PATH, then in the sbin directories root shells have. */
export function findExecutable(name: string, path = process.env['PATH'] ?? ''): string | undefined {
  return firstExecutable(name, [
    ...path.split(delimiter),
    '/usr/local/sbin',
    '/usr/sbin',
    '/sbin',
    '/usr/bin',
  ]);
}
