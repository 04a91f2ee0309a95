/** The engine watch's verdicts against a scripted ping: refused, hung, back again. */
import { describe, expect, it } from 'vitest';
import { warningsDuring } from '../testing/warnings.ts';
import { EngineWatch, type Ping, pingFailure } from './engine-watch.ts';
import type { EngineChange } from './runtime.ts';

const refused = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });

/** A ping the test switches between answering, refusing and hanging until its deadline. */
function scriptedPing() {
  const script = { mode: 'up' as 'up' | 'refused' | 'hung', pings: 0 };
  const ping: Ping = (signal) => {
    script.pings++;
    if (script.mode === 'up') return Promise.resolve();
    if (script.mode === 'refused') return Promise.reject(refused());
    return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
  };
  return { script, ping };
}

const fast = { probeIntervalMs: 10, probeTimeoutMs: 20, lostAfterMs: 150 };

function watchWith(ping: Ping, reaped: string[] | (() => Promise<string[]>) = []) {
  const changes: EngineChange[] = [];
  const reap = typeof reaped === 'function' ? reaped : async () => reaped;
  const watch = new EngineWatch(ping, 'unix:///test.sock', reap, fast);
  watch.onChange((change) => changes.push(change));
  return { watch, changes };
}

const until = async (check: () => boolean, what: string) => {
  for (let i = 0; i < 400 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  if (!check()) throw new Error(`never happened: ${what}`);
};

describe('EngineWatch', () => {
  it('tells a refused connection from a ping that timed out', () => {
    expect(pingFailure(refused())).toEqual({ refused: true, detail: 'refused (ECONNREFUSED)' });
    expect(pingFailure(new DOMException('t', 'TimeoutError'))).toEqual({
      refused: false,
      detail: 'no answer',
    });
  });

  it('aborts the watched work at once when the engine refuses, and announces it', async () => {
    const { script, ping } = scriptedPing();
    const { watch, changes } = watchWith(ping);
    const reason = await watch.watch(async (lost) => {
      script.mode = 'refused';
      await new Promise((resolve) => lost.addEventListener('abort', resolve));
      return String(lost.reason);
    });
    expect(reason).toContain('refused (ECONNREFUSED)');
    expect(changes.map((c) => c.type)).toEqual(['lost']);
    expect(watch.lost).toBe(true);
  });

  it('declares a hung engine lost only once it has been silent for lostAfterMs', async () => {
    const { script, ping } = scriptedPing();
    const { watch, changes } = watchWith(ping);
    await watch.watch(async (lost) => {
      script.mode = 'hung';
      const pingsAtHang = script.pings;
      await new Promise((resolve) => lost.addEventListener('abort', resolve));
      // More than one ping went unanswered before the verdict: one missed ping is not a loss.
      expect(script.pings - pingsAtHang).toBeGreaterThan(1);
    });
    expect(changes[0]).toMatchObject({ type: 'lost', endpoint: 'unix:///test.sock' });
    expect(changes[0]?.detail).toMatch(/no answer/);
  });

  it('keeps probing a lost engine, reconciles when it answers, then announces restored', async () => {
    const { script, ping } = scriptedPing();
    const { watch, changes } = watchWith(ping, ['sbx_gone']);
    script.mode = 'refused';
    expect(await watch.watch(() => watch.confirmLost('the wait stream closed'))).toBe(true);
    script.mode = 'up';
    await until(() => changes.length === 2, 'restored');
    expect(changes[1]).toEqual({ type: 'restored', endpoint: 'unix:///test.sock', reaped: ['sbx_gone'] });
    expect(watch.lost).toBe(false);
  });

  it('does not call an answering engine lost when a stream drops', async () => {
    const { ping } = scriptedPing();
    const { watch, changes } = watchWith(ping);
    expect(await watch.confirmLost('the wait stream closed')).toBe(false);
    expect(changes).toEqual([]);
  });

  it('sees an engine going away within the settle window, and one that stays', async () => {
    const { script, ping } = scriptedPing();
    const { watch } = watchWith(ping);
    expect(await watch.goingAway(60)).toBe(false);
    setTimeout(() => {
      script.mode = 'refused';
    }, 30);
    expect(await watch.goingAway(5_000)).toBe(true);
  });

  it('retries reconciling when it failed as the engine came back', async () => {
    const { script, ping } = scriptedPing();
    let attempts = 0;
    const reap = async () => {
      attempts++;
      if (attempts === 1) throw new Error('the list call failed');
      return ['sbx_late'];
    };
    const { watch, changes } = watchWith(ping, reap);
    script.mode = 'refused';
    await watch.confirmLost('the wait stream closed');
    script.mode = 'up';
    await until(() => changes.length === 2, 'restored after a retry');
    expect(attempts).toBe(2);
    expect(changes[1]).toMatchObject({ type: 'restored', reaped: ['sbx_late'] });
  });

  it('lets as many watched calls as there are sandboxes listen on its signal, without a warning', async () => {
    const warnings = await warningsDuring(async () => {
      const { watch } = watchWith(scriptedPing().ping);
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      // As an engine call does with its signal: one abort listener per call in flight.
      const calls = Array.from({ length: 20 }, () =>
        watch.watch(async (lost) => {
          lost.addEventListener('abort', () => {});
          await held;
        }),
      );
      release();
      await Promise.all(calls);
    });
    expect(warnings).not.toContain('MaxListenersExceededWarning');
  });
});
