/** What `grexal doctor` found, as data: pure, so the verdicts and fixes are unit-tested. */
import type { EngineInfo, ImageInfo } from '../runtime/runtime.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to run or do when the status is not ok. */
  fix?: string;
}

export interface DoctorFacts {
  engine: EngineInfo | undefined;
  /** Why no engine answered (its message lists every endpoint tried). */
  engineError?: string;
  images: Array<{ tag: string; image: ImageInfo | undefined }>;
  /** Path of runsc on this machine, when installed. */
  runscPath: string | undefined;
  /** Chromium on the host, for the browser tests. */
  chromiumPath: string | undefined;
}

const mb = (bytes: number): string => `${Math.round(bytes / 1e6)} MB`;

function engineChecks(facts: DoctorFacts): Check[] {
  const e = facts.engine;
  if (!e) {
    return [
      {
        name: 'engine',
        status: 'fail',
        detail: facts.engineError ?? 'no Docker engine answered',
        fix: 'Run `grexal doctor --fix` (Debian, as root) or start Docker.',
      },
    ];
  }
  const runtimes = e.runtimes.map((r) => (r === e.defaultRuntime ? `${r} (default)` : r)).join(', ');
  const checks: Check[] = [
    { name: 'engine', status: 'ok', detail: `${e.endpoint}: Docker ${e.version}, API ${e.apiVersion}` },
    { name: 'storage', status: 'ok', detail: `${e.storageDriver}, data root ${e.dataRoot}` },
    { name: 'runtimes', status: 'ok', detail: runtimes },
  ];
  if (e.runtimes.includes('runsc')) {
    checks.push({
      name: 'gvisor',
      status: 'ok',
      detail: 'runsc registered (choose it per sandbox with --runtime runsc)',
    });
  } else if (facts.runscPath) {
    checks.push({
      name: 'gvisor',
      status: 'warn',
      detail: `runsc installed at ${facts.runscPath} but not registered with the engine`,
      fix: 'Run `grexal doctor --fix` as root to register it.',
    });
  } else {
    checks.push({
      name: 'gvisor',
      status: 'warn',
      detail: 'runsc not installed (optional, stronger isolation)',
      fix: 'apt-get install runsc, then `grexal doctor --fix`.',
    });
  }
  return checks;
}

function imageChecks(facts: DoctorFacts): Check[] {
  if (!facts.engine) return [];
  return facts.images.map(({ tag, image }) =>
    image
      ? { name: 'image', status: 'ok', detail: `${tag} (${image.id.slice(7, 19)}, ${mb(image.sizeBytes)})` }
      : { name: 'image', status: 'fail', detail: `${tag} missing`, fix: 'Run `grexal images build`.' },
  );
}

export function doctorChecks(facts: DoctorFacts): Check[] {
  const chromium: Check = facts.chromiumPath
    ? { name: 'chromium', status: 'ok', detail: `${facts.chromiumPath} (host, for browser tests)` }
    : {
        name: 'chromium',
        status: 'warn',
        detail: 'no Chromium on the host (only the browser tests need it)',
        fix: 'apt-get install chromium, or set CHROMIUM_PATH.',
      };
  return [...engineChecks(facts), ...imageChecks(facts), chromium];
}

/** Non-zero when anything required failed; warnings alone keep 0. */
export function doctorExitCode(checks: Check[]): number {
  return checks.some((c) => c.status === 'fail') ? 1 : 0;
}

export function formatChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const mark: Record<CheckStatus, string> = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' };
  const lines = checks.map((c) => {
    const fix = c.status !== 'ok' && c.fix ? `\n${' '.repeat(width + 9)}fix: ${c.fix}` : '';
    return `  ${mark[c.status]}  ${c.name.padEnd(width)}  ${c.detail}${fix}`;
  });
  return `${lines.join('\n')}\n`;
}
