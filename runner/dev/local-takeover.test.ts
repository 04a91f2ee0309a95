import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { askDeveloper } from './local-takeover.ts';

function harness(until?: { cookie: string }) {
  const stdin = new PassThrough();
  const lines: string[] = [];
  let interrupt: (() => void) | undefined;
  let released = false;
  const ended = new AbortController();
  const asked = askDeveloper(
    {
      sandboxId: 'sbx_1',
      reason: 'Log in to X',
      label: 'X',
      signal: ended.signal,
      ...(until ? { until } : {}),
    },
    {
      say: (line) => lines.push(line),
      stdin,
      interceptInterrupt: (handler) => {
        interrupt = handler;
        return () => {
          released = true;
        };
      },
    },
  );
  asked.catch(() => {});
  return { stdin, lines, asked, ended, interrupt: () => interrupt?.(), released: () => released };
}

describe('askDeveloper', () => {
  it('says why and how, and completes on Enter', async () => {
    const h = harness();
    expect(h.lines).toEqual([
      'the agent asks for a takeover (X): Log in to X',
      'log in in the browser window, then press Enter (Ctrl-C cancels)',
    ]);
    h.stdin.write('\n');
    await expect(h.asked).resolves.toBeUndefined();
    expect(h.released()).toBe(true);
  });

  it('cancels on Ctrl-C', async () => {
    const h = harness();
    h.interrupt();
    await expect(h.asked).rejects.toMatchObject({ code: 'takeover_cancelled' });
    expect(h.released()).toBe(true);
  });

  it('cancels when the terminal input ends, unless until may still end it', async () => {
    const h = harness();
    h.stdin.end();
    await expect(h.asked).rejects.toMatchObject({ code: 'takeover_cancelled' });
    const withUntil = harness({ cookie: 'sid' });
    withUntil.stdin.end();
    await new Promise((resolve) => setImmediate(resolve));
    withUntil.ended.abort(new Error('signed in (until.cookie held)'));
    await expect(withUntil.asked).rejects.toThrow('signed in');
    expect(withUntil.lines.at(-1)).toBe('takeover ended: signed in (until.cookie held)');
  });
});
