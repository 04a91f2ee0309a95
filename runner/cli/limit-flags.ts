/** `--memory 512m --cpus 1.5 --pids 256 --timeout 30s` → the API's numeric limits. */
import type { Problem } from '../errors.ts';
import { ValidationError } from '../errors.ts';
import { type LimitsInput, parseBytes, parseDurationMs } from '../sandbox/index.ts';

export const LIMIT_FLAGS = {
  memory: { type: 'string' },
  cpus: { type: 'string' },
  pids: { type: 'string' },
  timeout: { type: 'string' },
  'tmp-size': { type: 'string' },
  'home-size': { type: 'string' },
  'shm-size': { type: 'string' },
} as const;

export const LIMIT_FLAGS_USAGE = `  --memory SIZE      memory limit, e.g. 512m, 2g (default 1g; desktop 2g)
  --cpus N           CPU limit, fractions allowed, e.g. 0.5 (default 1; desktop 2)
  --pids N           process and thread limit (default 256; desktop 1024)
  --timeout DURATION destroy the sandbox after e.g. 90s, 10m, 1h (default 1h)
  --tmp-size SIZE    size of the /tmp tmpfs (default 64m; desktop 256m)
  --home-size SIZE   size of the /home/agent tmpfs (default 64m; desktop 512m)
  --shm-size SIZE    size of /dev/shm (default 64m; desktop 512m)
                     tmpfs pages count against --memory as they are written`;

interface LimitFlagValues {
  memory?: string;
  cpus?: string;
  pids?: string;
  timeout?: string;
  'tmp-size'?: string;
  'home-size'?: string;
  'shm-size'?: string;
}

const TMPFS_FLAGS = [
  ['tmp-size', 'tmpBytes'],
  ['home-size', 'homeBytes'],
  ['shm-size', 'shmBytes'],
] as const;

/** Parses the flags or throws one ValidationError naming every bad flag; nothing is created. */
export function parseLimitFlags(values: LimitFlagValues): LimitsInput {
  const limits: LimitsInput = {};
  const problems: Problem[] = [];
  const bad = (flag: string, message: string, fix: string): void => {
    problems.push({ code: 'E_LIMIT_INVALID', path: `--${flag}`, message, fix });
  };
  if (values.memory !== undefined) {
    const bytes = parseBytes(values.memory);
    if (bytes === undefined) bad('memory', `'${values.memory}' is not a size.`, 'Use e.g. 512m or 2g.');
    else limits.memoryBytes = bytes;
  }
  if (values.cpus !== undefined) {
    const cpus = Number(values.cpus);
    if (!Number.isFinite(cpus) || cpus <= 0 || values.cpus.trim() === '') {
      bad('cpus', `'${values.cpus}' is not a positive number of CPUs.`, 'Use e.g. 0.5, 1 or 2.');
    } else limits.cpus = cpus;
  }
  if (values.pids !== undefined) {
    const pids = Number(values.pids);
    if (!Number.isInteger(pids) || pids <= 0)
      bad('pids', `'${values.pids}' is not a process count.`, 'Use e.g. 256.');
    else limits.pidsLimit = pids;
  }
  if (values.timeout !== undefined) {
    const ms = parseDurationMs(values.timeout);
    if (ms === undefined)
      bad('timeout', `'${values.timeout}' is not a duration.`, 'Use e.g. 90s, 10m or 1h.');
    else limits.timeoutMs = ms;
  }
  for (const [flag, field] of TMPFS_FLAGS) {
    const text = values[flag];
    if (text === undefined) continue;
    const bytes = parseBytes(text);
    if (bytes === undefined) bad(flag, `'${text}' is not a size.`, 'Use e.g. 128m or 1g.');
    else limits[field] = bytes;
  }
  if (problems.length > 0) throw new ValidationError(problems, 'limits');
  return limits;
}
