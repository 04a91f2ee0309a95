/** A sandbox created with a browser behind the relay, against a fake runtime and a fake Chromium. */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeChromium } from '../browser/fake-chromium.ts';
import type { ContainerHandle, ContainerRuntime, ContainerSpec } from '../runtime/index.ts';
import type { LocalTakeoverRequest } from './browser-wiring.ts';
import { CtxLink } from './fake-supervisor-link.ts';
import { resolveSandboxOptions } from './options.ts';
import { Sandbox } from './sandbox.ts';

/** A "container" that runs `behaviour` against ctx.sock as the supervisor would. */
function fakeRuntime(behaviour: (link: CtxLink, runDir: string) => Promise<number>): ContainerRuntime {
  const container = (spec: ContainerSpec): ContainerHandle => {
    const out = { stdout: new PassThrough(), stderr: new PassThrough() };
    let exit: Promise<{ exitCode: number; oomKilled: boolean }>;
    return {
      id: 'c1',
      attach: async () => out,
      pid: async () => 0,
      start: async () => {
        exit = (async () => {
          const link = await CtxLink.open(join(spec.hostRunDir, 'ctx.sock'));
          const exitCode = await behaviour(link, spec.hostRunDir);
          link.close();
          out.stdout.end();
          out.stderr.end();
          return { exitCode, oomKilled: false };
        })();
      },
      wait: () => exit,
      stop: async () => {},
      remove: async () => {},
      [Symbol.asyncDispose]: async () => {},
    } as unknown as ContainerHandle;
  };
  return {
    instanceId: 'test-host/1-1',
    createContainer: async (spec: ContainerSpec) => container(spec),
    image: async () => undefined,
    reapLeftovers: async () => [],
    onEngineChange: () => () => {},
  } as unknown as ContainerRuntime;
}

describe('a sandbox with a relayed browser', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'sandbox-browser-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('serves cdp.sock, has the supervisor forward to it, takes over locally, and closes the relay with it', async () => {
    const browser = new FakeChromium();
    const asked: LocalTakeoverRequest[] = [];
    let seen: { boot: Record<string, unknown>; socket: boolean; outcome: unknown } | undefined;
    const runtime = fakeRuntime(async (link, runDir) => {
      const boot = (await link.call('bootstrap', { argv: ['x'] })) as Record<string, unknown>;
      const socket = (await stat(join(runDir, 'cdp.sock'))).isSocket();
      const outcome = await link.call('request_takeover', { reason: 'Log in', connectionId: 'site' });
      seen = { boot, socket, outcome };
      return 0;
    });
    const sandbox = new Sandbox('sbx_test', resolveSandboxOptions({ image: 'grexal/agent' }), {
      runtime,
      stateDir,
      logger: pino({ level: 'silent' }),
      browser: {
        upstream: browser,
        takeOver: async (request) => {
          asked.push(request);
        },
      },
    });
    const states: string[] = [];
    sandbox.onEvent((event) => {
      if (event.type === 'state') states.push(event.state);
    });
    await sandbox.start();
    expect((await sandbox.exited).exitCode).toBe(0);
    expect(seen?.boot['cdpRelay']).toEqual({ port: 9222 });
    expect(seen?.socket).toBe(true);
    // No desktop, and still a takeover: the local one.
    expect(seen?.outcome).toEqual({ outcome: 'completed' });
    expect(asked).toEqual([
      expect.objectContaining({ sandboxId: 'sbx_test', reason: 'Log in', connectionId: 'site' }),
    ]);
    expect(states).toContain('awaiting_takeover');
    expect(browser.closed).toBe(true);
  });
});
