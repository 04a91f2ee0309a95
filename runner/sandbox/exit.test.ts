import { describe, expect, it } from 'vitest';
import { classifyExit } from './exit.ts';

const at = 1_000;

describe('classifyExit', () => {
  it('tells an exit, an OOM kill and a deadline apart; a destroy under way names its own reason', () => {
    const exit = (status: Partial<{ exitCode: number; oomKilled: boolean }>, context = {}) =>
      classifyExit({ exitCode: 0, oomKilled: false, ...status }, at, context).exit.reason;
    expect(exit({ exitCode: 3 })).toBe('exited');
    expect(exit({ exitCode: 0, oomKilled: true })).toBe('oom');
    expect(exit({ exitCode: 124 }, { deadlineAt: at })).toBe('timeout');
    expect(exit({ exitCode: 0 }, { deadlineAt: at + 1 })).toBe('exited');
    expect(exit({ exitCode: 137, oomKilled: true }, { ending: 'destroyed' })).toBe('destroyed');
  });

  it("lets the engine's own end win, with the error to report", () => {
    const { exit, engineError } = classifyExit(
      {
        exitCode: 137,
        oomKilled: false,
        engine: { kind: 'lost', endpoint: 'unix:///d.sock', detail: 'gone' },
      },
      at,
      { ending: 'destroyed' },
    );
    expect(exit).toMatchObject({ reason: 'engine_lost', exitCode: 137 });
    expect(engineError?.code).toBe('E_ENGINE_LOST');
    expect(exit.message).toBe(engineError?.message);
  });

  it('names a signal through the engine that nobody here sent, with the remedy', () => {
    const { exit, engineError } = classifyExit(
      {
        exitCode: 143,
        oomKilled: false,
        engine: { kind: 'killed', endpoint: 'unix:///d.sock', detail: 'a signal through the engine' },
      },
      at,
      {},
    );
    expect(exit).toMatchObject({ reason: 'killed', exitCode: 143 });
    expect(engineError?.code).toBe('E_SANDBOX_KILLED');
    expect(exit.message).toContain('docker stop');
    expect(exit.message).toContain('DELETE /v1/sandboxes/<id>');
  });
});
