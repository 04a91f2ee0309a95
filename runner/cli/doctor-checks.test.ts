import { describe, expect, it } from 'vitest';
import type { EngineInfo } from '../runtime/runtime.ts';
import { type DoctorFacts, doctorChecks, doctorExitCode, formatChecks } from './doctor-checks.ts';

const engine: EngineInfo = {
  endpoint: 'unix:///var/run/docker.sock',
  version: '20.10.24',
  apiVersion: '1.41',
  runtimes: ['runc', 'runsc'],
  defaultRuntime: 'runc',
  storageDriver: 'overlay2',
  dataRoot: '/var/lib/docker',
};
const image = { tag: 'grexal/base', id: `sha256:${'a'.repeat(64)}`, labels: {}, sizeBytes: 75e6 };

function facts(over: Partial<DoctorFacts> = {}): DoctorFacts {
  return {
    engine,
    images: [{ tag: 'grexal/base', image }],
    runscPath: '/usr/bin/runsc',
    chromiumPath: '/usr/bin/chromium',
    ...over,
  };
}

describe('doctorChecks', () => {
  it('reports the engine, runtimes, images and Chromium, and exits 0 when all is there', () => {
    const checks = doctorChecks(facts());
    expect(checks.every((c) => c.status === 'ok')).toBe(true);
    const text = formatChecks(checks);
    expect(text).toContain('unix:///var/run/docker.sock: Docker 20.10.24, API 1.41');
    expect(text).toContain('runc (default), runsc');
    expect(text).toContain('overlay2');
    expect(text).toContain('grexal/base (aaaaaaaaaaaa, 75 MB)');
    expect(doctorExitCode(checks)).toBe(0);
  });

  it('fails on a missing image and names the fix', () => {
    const checks = doctorChecks(facts({ images: [{ tag: 'grexal/agent', image: undefined }] }));
    expect(doctorExitCode(checks)).toBe(1);
    expect(formatChecks(checks)).toMatch(
      /FAIL {2}image +grexal\/agent missing\n +fix: Run `grexal images build`\./,
    );
  });

  it('fails without an engine and carries what was tried', () => {
    const checks = doctorChecks(
      facts({ engine: undefined, engineError: 'No Docker engine found (tried …).' }),
    );
    expect(doctorExitCode(checks)).toBe(1);
    expect(checks[0]).toMatchObject({
      name: 'engine',
      status: 'fail',
      detail: 'No Docker engine found (tried …).',
    });
    expect(checks[0]?.fix).toContain('grexal doctor --fix');
  });

  it('only warns about runsc and Chromium', () => {
    const unregistered = doctorChecks(
      facts({ engine: { ...engine, runtimes: ['runc'] }, chromiumPath: undefined }),
    );
    expect(unregistered.find((c) => c.name === 'gvisor')).toMatchObject({ status: 'warn' });
    expect(unregistered.find((c) => c.name === 'gvisor')?.fix).toContain('--fix');
    expect(unregistered.find((c) => c.name === 'chromium')).toMatchObject({ status: 'warn' });
    expect(doctorExitCode(unregistered)).toBe(0);
    const absent = doctorChecks(facts({ engine: { ...engine, runtimes: ['runc'] }, runscPath: undefined }));
    expect(absent.find((c) => c.name === 'gvisor')?.detail).toContain('not installed');
  });
});
