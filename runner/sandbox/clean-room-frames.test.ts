import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { CdpEventListener } from '../browser/cdp-session.ts';
import { bypassWorkersInFrames } from './clean-room-frames.ts';

/** A CDP connection that records `method@session` and lets the test send events. */
function fakeCdp(refuse?: (method: string, sessionId?: string) => boolean) {
  const calls: string[] = [];
  const listeners = new Set<CdpEventListener>();
  const cdp = async (method: string, _params: Record<string, unknown> = {}, sessionId?: string) => {
    calls.push(`${method}@${sessionId}`);
    if (refuse?.(method, sessionId)) throw new Error(`CDP ${method}: refused`);
    return {};
  };
  const events = (listener: CdpEventListener) => {
    listeners.add(listener);
    return () => void listeners.delete(listener);
  };
  const attached = (child: string, parent: string, type = 'iframe') => {
    for (const listener of listeners)
      listener(
        'Target.attachedToTarget',
        { sessionId: child, targetInfo: { type }, waitingForDebugger: true },
        parent,
      );
  };
  const settled = () => new Promise((resolve) => setTimeout(resolve, 0));
  return { calls, cdp, events, attached, settled, listeners };
}

const logger = pino({ level: 'silent' });

describe('bypassWorkersInFrames', () => {
  it('gives each frame the page starts, and their own frames, the bypass before it runs', async () => {
    const fake = fakeCdp();
    const stop = await bypassWorkersInFrames(fake.cdp, fake.events, 'page', logger);
    expect(fake.calls).toEqual(['Target.setAutoAttach@page']);
    fake.attached('frame', 'page');
    await fake.settled();
    fake.attached('nested', 'frame', 'worker');
    await fake.settled();
    const of = (session: string) => fake.calls.filter((c) => c.endsWith(`@${session}`));
    for (const session of ['frame', 'nested']) {
      // Run last: the bypass and the watch of its own frames are on before its first line.
      expect(of(session).at(-1)).toBe(`Runtime.runIfWaitingForDebugger@${session}`);
      expect(of(session).sort()).toEqual(
        [
          'Network.enable',
          'Network.setBypassServiceWorker',
          'Target.setAutoAttach',
          'Runtime.runIfWaitingForDebugger',
        ]
          .map((m) => `${m}@${session}`)
          .sort(),
      );
    }
    stop();
    expect(fake.listeners.size).toBe(0);
  });

  it('leaves a frame whose bypass fails paused, and ignores targets of other sessions and malformed events', async () => {
    const fake = fakeCdp(
      (method, session) => method === 'Network.setBypassServiceWorker' && session === 'frame',
    );
    await bypassWorkersInFrames(fake.cdp, fake.events, 'page', logger);
    fake.attached('frame', 'page');
    fake.attached('theirs', 'agent-session');
    fake.attached('browser-level', undefined as unknown as string);
    for (const listener of fake.listeners) listener('Target.attachedToTarget', { targetInfo: null }, 'page');
    await fake.settled();
    expect(fake.calls).not.toContain('Runtime.runIfWaitingForDebugger@frame');
    expect(fake.calls.filter((c) => /@(theirs|browser-level)$/.test(c))).toEqual([]);
  });

  it('stops watching when the page cannot be watched, and throws', async () => {
    const fake = fakeCdp((method) => method === 'Target.setAutoAttach');
    await expect(bypassWorkersInFrames(fake.cdp, fake.events, 'page', logger)).rejects.toThrow(/refused/);
    expect(fake.listeners.size).toBe(0);
  });
});
