import { describe, expect, it, vi } from 'vitest';
import { isRunscRegistered, mergeDaemonConfig, RUNSC_ARGS } from './engine-install.ts';

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
    expect(JSON.parse(text).runtimes.runsc.runtimeArgs).toEqual([
      '--network=host',
      '--ignore-cgroups',
      '--host-uds=all',
    ]);
  });

  it('replaces an older registration without host sockets', () => {
    const older = { path: '/usr/bin/runsc', runtimeArgs: ['--network=host', '--ignore-cgroups'] };
    const { text, changed } = mergeDaemonConfig(
      JSON.stringify({ runtimes: { runsc: older } }),
      '/usr/bin/runsc',
    );
    expect(changed).toBe(true);
    expect(JSON.parse(text).runtimes.runsc).toEqual(runsc);
  });
});

describe('isRunscRegistered', () => {
  it('holds only for this path with exactly the wanted arguments', () => {
    expect(isRunscRegistered(runsc, '/usr/bin/runsc')).toBe(true);
    expect(isRunscRegistered(undefined, '/usr/bin/runsc')).toBe(false);
    expect(isRunscRegistered({ path: '/usr/bin/runsc' }, '/usr/bin/runsc')).toBe(false);
    expect(isRunscRegistered({ ...runsc, runtimeArgs: RUNSC_ARGS.slice(0, 2) }, '/usr/bin/runsc')).toBe(
      false,
    );
    expect(isRunscRegistered(runsc, '/usr/local/bin/runsc')).toBe(false);
  });

  it('refuses a config that is not a JSON object', () => {
    expect(() => mergeDaemonConfig('[1]', '/usr/bin/runsc')).toThrow(/not a JSON object/);
    expect(() => mergeDaemonConfig('{ nope', '/usr/bin/runsc')).toThrow();
  });
});

describe('ensureEngine where it cannot install', () => {
  it('lists what was tried and gives the manual fix', async () => {
    vi.resetModules();
    vi.doMock('./engine.ts', async (importOriginal) => {
      const real = await importOriginal<typeof import('./engine.ts')>();
      const attempts = [
        { strategy: 'default socket', endpoint: 'unix:///var/run/docker.sock', error: 'no such socket' },
      ];
      return { ...real, connectEngine: () => Promise.reject(real.unreachableError(attempts)) };
    });
    const getuid = vi.spyOn(process, 'getuid').mockReturnValue(1000);
    try {
      const { ensureEngine } = await import('./engine-install.ts');
      const error = await ensureEngine({ log: () => {} }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'E_ENGINE_UNREACHABLE' });
      expect((error as Error).message).toContain(
        'default socket (unix:///var/run/docker.sock): no such socket',
      );
      expect((error as Error).message).toContain('Automatic install needs Debian and root');
    } finally {
      getuid.mockRestore();
      vi.doUnmock('./engine.ts');
    }
  });
});
