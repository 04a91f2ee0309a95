import { describe, expect, it } from 'vitest';
import { findExecutable, mergeDaemonConfig, RUNSC_ARGS } from './engine-install.ts';

const runsc = { path: '/usr/bin/runsc', runtimeArgs: RUNSC_ARGS };

describe('mergeDaemonConfig', () => {
  it('creates the config when there is none', () => {
    const { text, changed } = mergeDaemonConfig(undefined, '/usr/bin/runsc');
    expect(changed).toBe(true);
    expect(JSON.parse(text)).toEqual({ runtimes: { runsc } });
  });

  it('keeps every other key and runtime', () => {
    const existing = JSON.stringify({ 'log-level': 'warn', runtimes: { kata: { path: '/opt/kata' } } });
    const merged = JSON.parse(mergeDaemonConfig(existing, '/usr/bin/runsc').text);
    expect(merged).toEqual({ 'log-level': 'warn', runtimes: { kata: { path: '/opt/kata' }, runsc } });
  });

  it('reports no change when runsc is already registered the same way', () => {
    const existing = JSON.stringify({ runtimes: { runsc } });
    expect(mergeDaemonConfig(existing, '/usr/bin/runsc').changed).toBe(false);
  });

  it('replaces a registration without the runtime arguments', () => {
    const existing = JSON.stringify({ runtimes: { runsc: { path: '/usr/bin/runsc' } } });
    const { text, changed } = mergeDaemonConfig(existing, '/usr/bin/runsc');
    expect(changed).toBe(true);
    expect(JSON.parse(text).runtimes.runsc.runtimeArgs).toEqual(['--network=host', '--ignore-cgroups']);
  });

  it('refuses a config that is not a JSON object', () => {
    expect(() => mergeDaemonConfig('[1]', '/usr/bin/runsc')).toThrow(/not a JSON object/);
    expect(() => mergeDaemonConfig('{ nope', '/usr/bin/runsc')).toThrow();
  });
});

describe('findExecutable', () => {
  it('finds an executable on PATH and misses an unknown one', () => {
    expect(findExecutable('sh', '/bin:/usr/bin')).toMatch(/\/sh$/);
    expect(findExecutable('grexal-no-such-tool', '/bin')).toBeUndefined();
  });
});
