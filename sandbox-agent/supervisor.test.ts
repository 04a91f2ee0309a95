import { describe, expect, it } from 'vitest';
import type { BootstrapResult } from './protocol.ts';
import { superviseAgent } from './supervisor.ts';

const bootstrap = (command: string[], extra: Partial<BootstrapResult> = {}): BootstrapResult => ({
  command,
  env: {},
  stopTimeoutMs: 200,
  ...extra,
});

describe('superviseAgent', () => {
  it('mirrors the exit code', async () => {
    expect(await superviseAgent(bootstrap(['sh', '-c', 'exit 3']), { log: () => {} })).toEqual({ code: 3 });
  });

  it('gives the injected env to the agent only', async () => {
    const exit = await superviseAgent(
      bootstrap(['sh', '-c', 'test "$CANARY" = sung && exit 7'], { env: { CANARY: 'sung' } }),
      { log: () => {} },
    );
    expect(exit.code).toBe(7);
    expect(process.env['CANARY']).toBeUndefined();
  });

  it('exits 127 naming a missing command', async () => {
    const lines: string[] = [];
    const exit = await superviseAgent(bootstrap(['no-such-command-xyz']), { log: (l) => lines.push(l) });
    expect(exit.code).toBe(127);
    expect(lines).toEqual(['command not found: no-such-command-xyz']);
  });

  it('reports a signal death as 128+n', async () => {
    expect((await superviseAgent(bootstrap(['sh', '-c', 'kill -KILL $$']), { log: () => {} })).code).toBe(
      137,
    );
  });

  it('terminates, then kills, an agent that ignores SIGTERM', async () => {
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const exit = superviseAgent(bootstrap(['sh', '-c', "trap '' TERM; while :; do sleep 0.05; done"]), {
      log: () => {},
      onStarted: () => started(),
    });
    await running;
    // The shell must have installed its trap before the signal comes.
    await new Promise((resolve) => setTimeout(resolve, 100));
    process.emit('SIGTERM');
    expect((await exit).code).toBe(137);
  });
});
