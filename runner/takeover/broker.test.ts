import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GrexalError } from '../errors.ts';
import { type AuthorizedTakeover, TakeoverBroker } from './broker.ts';
import { TakeoverError } from './takeover-error.ts';
import { tokenMatches } from './token.ts';
import { CLOSE_CODES, type TakeoverEvent, type TakeoverRequest } from './types.ts';

const MINUTE = 60_000;

function setup() {
  const events: TakeoverEvent[] = [];
  const broker = new TakeoverBroker({ baseUrl: 'http://127.0.0.1:9999/', onEvent: (e) => events.push(e) });
  const request = (over: Partial<TakeoverRequest> = {}) =>
    broker.request({
      sandboxId: 'sb1',
      connectionId: 'linkedin',
      label: 'LinkedIn',
      reason: 'Log in to LinkedIn',
      timeoutMs: 5 * MINUTE,
      vncSocketPath: '/run/grexal-test/sb1/vnc.sock',
      ...over,
    });
  const tokenOf = (): string => {
    const event = events.find((e) => e.type === 'takeover.requested');
    if (event?.type !== 'takeover.requested') throw new Error('no requested event');
    return new URL(event.url).searchParams.get('token')!;
  };
  return { broker, events, request, tokenOf };
}

async function rejection(promise: Promise<unknown>): Promise<TakeoverError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(error instanceof TakeoverError)) throw new Error(`expected a TakeoverError, got ${String(error)}`);
  return error;
}

function accessError(fn: () => unknown): GrexalError {
  try {
    fn();
  } catch (error) {
    if (error instanceof GrexalError) return error;
    throw error;
  }
  throw new Error('expected a GrexalError');
}

describe('tokenMatches', () => {
  it('accepts only the exact token', () => {
    expect(tokenMatches('abc', 'abc')).toBe(true);
    expect(tokenMatches('abc', 'abd')).toBe(false);
    expect(tokenMatches('abc', 'abcd')).toBe(false);
    expect(tokenMatches('abc', '')).toBe(false);
    expect(tokenMatches('abc', undefined)).toBe(false);
    expect(tokenMatches('abc', null)).toBe(false);
  });
});

describe('TakeoverBroker', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('opens a takeover with a link, a 32-byte token and an expiry', () => {
    const { request, events, tokenOf } = setup();
    const { takeover } = request();
    expect(takeover.state).toBe('requested');
    expect(Date.parse(takeover.expiresAt) - Date.parse(takeover.createdAt)).toBe(5 * MINUTE);
    const event = events[0]!;
    expect(event).toMatchObject({
      type: 'takeover.requested',
      takeoverId: takeover.id,
      sandboxId: 'sb1',
      reason: 'Log in to LinkedIn',
    });
    if (event.type !== 'takeover.requested') throw new Error('unreachable');
    expect(event.url.startsWith(`http://127.0.0.1:9999/takeover/${takeover.id}?token=`)).toBe(true);
    expect(Buffer.from(tokenOf(), 'base64url')).toHaveLength(32);
    expect(JSON.stringify(takeover)).not.toContain(tokenOf());
    expect(JSON.stringify(takeover)).not.toContain('vnc.sock');
  });

  it('gives each takeover its own token', () => {
    const { broker, request } = setup();
    const tokens = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const { takeover } = request({ sandboxId: `sb${i}` });
      const url = broker.linkFor(takeover.id)!;
      tokens.add(new URL(url).searchParams.get('token')!);
    }
    expect(tokens.size).toBe(20);
  });

  it('refuses a second takeover for the same sandbox, allows one for another', async () => {
    const { request } = setup();
    request();
    expect(() => request()).toThrow(expect.objectContaining({ code: 'takeover_in_progress' }));
    expect(() => request({ sandboxId: 'sb2' })).not.toThrow();
  });

  it('refuses a timeout outside 10 s – 30 min and an empty reason', () => {
    const { request } = setup();
    for (const timeoutMs of [9_999, 30 * MINUTE + 1, 1.5e4 + 0.5]) {
      expect(() => request({ timeoutMs })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
    }
    expect(() => request({ reason: '' })).toThrow(expect.objectContaining({ code: 'invalid_request' }));
  });

  it('refuses to open a takeover nobody could reach', () => {
    const broker = new TakeoverBroker();
    expect(() =>
      broker.request({ sandboxId: 's', reason: 'r', timeoutMs: MINUTE, vncSocketPath: '/x/vnc.sock' }),
    ).toThrow(expect.objectContaining({ code: 'takeover_unavailable' }));
  });

  it('completes: done resolves, the event fires, viewers are closed, the link then answers 410', async () => {
    const { broker, request, events, tokenOf } = setup();
    const { takeover, done } = request();
    const closes: number[] = [];
    broker.authorize(takeover.id, tokenOf()).attachViewer({ close: (code) => closes.push(code) });
    expect(broker.get(takeover.id)?.state).toBe('active');
    expect(broker.complete(takeover.id, tokenOf()).state).toBe('completed');
    await expect(done).resolves.toBe('completed');
    expect(events.map((e) => e.type)).toEqual(['takeover.requested', 'takeover.completed']);
    expect(closes).toEqual([CLOSE_CODES.completed]);
    expect(broker.get(takeover.id)).toBeUndefined();
    expect(broker.openFor('sb1')).toBeUndefined();
    expect(accessError(() => broker.authorize(takeover.id, tokenOf())).status).toBe(410);
    expect(accessError(() => broker.complete(takeover.id, tokenOf())).status).toBe(410);
  });

  it('cancels on the user request with takeover_cancelled', async () => {
    const { broker, request, events, tokenOf } = setup();
    const { takeover, done } = request();
    broker.cancel(takeover.id, tokenOf());
    expect((await rejection(done)).code).toBe('takeover_cancelled');
    expect(events[1]).toMatchObject({ type: 'takeover.cancelled', by: 'user' });
  });

  it('expires after timeoutMs with takeover_expired, and not before', async () => {
    const { broker, request, events } = setup();
    const { takeover, done } = request({ timeoutMs: 10_000 });
    vi.advanceTimersByTime(9_999);
    expect(broker.get(takeover.id)?.state).toBe('requested');
    vi.advanceTimersByTime(1);
    expect((await rejection(done)).code).toBe('takeover_expired');
    expect(events[1]).toMatchObject({ type: 'takeover.expired', takeoverId: takeover.id });
  });

  it('cancels when the caller aborts, and when the sandbox goes', async () => {
    const { broker, request, events } = setup();
    const controller = new AbortController();
    const first = request({ signal: controller.signal });
    controller.abort();
    expect((await rejection(first.done)).code).toBe('takeover_cancelled');
    expect(events[1]).toMatchObject({ type: 'takeover.cancelled', by: 'caller' });
    const second = request();
    expect(broker.cancelAllFor('sb1')).toBe(1);
    expect(broker.cancelAllFor('sb1')).toBe(0);
    expect((await rejection(second.done)).code).toBe('takeover_cancelled');
    expect(events[3]).toMatchObject({ type: 'takeover.cancelled', by: 'sandbox' });
    const third = request();
    broker.cancelAllFor('sb1', 'clean_room');
    const refused = await rejection(third.done);
    expect([refused.code, refused.message]).toEqual([
      'takeover_cancelled',
      expect.stringContaining('could not prepare'),
    ]);
    expect(events[5]).toMatchObject({ type: 'takeover.cancelled', by: 'clean_room' });
  });

  it('ends exactly once: a late timer or Done after Cancel changes nothing', async () => {
    const { broker, request, events, tokenOf } = setup();
    const { takeover, done } = request({ timeoutMs: 10_000 });
    broker.cancel(takeover.id, tokenOf());
    vi.advanceTimersByTime(60_000);
    expect(() => broker.complete(takeover.id, tokenOf())).toThrow(GrexalError);
    expect(events).toHaveLength(2);
    expect((await rejection(done)).code).toBe('takeover_cancelled');
  });

  it('checks id then token: 404 unknown, 401 missing, 403 wrong', () => {
    const { broker, request, tokenOf } = setup();
    const { takeover } = request();
    const token = tokenOf();
    expect(accessError(() => broker.authorize('tk_nope', token)).status).toBe(404);
    expect(accessError(() => broker.authorize(takeover.id, undefined)).status).toBe(401);
    expect(accessError(() => broker.authorize(takeover.id, '')).status).toBe(401);
    const flipped = (token[0] === 'A' ? 'B' : 'A') + token.slice(1);
    expect(accessError(() => broker.authorize(takeover.id, flipped)).status).toBe(403);
    expect(accessError(() => broker.authorize(takeover.id, `${token}x`)).status).toBe(403);
    expect(accessError(() => broker.cancel(takeover.id, flipped)).status).toBe(403);
    expect(broker.get(takeover.id)?.state).toBe('requested');
    expect(broker.authorize(takeover.id, token).vncSocketPath).toBe('/run/grexal-test/sb1/vnc.sock');
  });

  it('forgets an ended takeover after the retention time (then 404)', () => {
    const broker = new TakeoverBroker({ baseUrl: 'http://h', endedRetentionMs: MINUTE });
    const a = broker.request({
      sandboxId: 'a',
      reason: 'r',
      timeoutMs: MINUTE,
      vncSocketPath: '/a/vnc.sock',
    });
    const tokenA = new URL(broker.linkFor(a.takeover.id)!).searchParams.get('token');
    broker.complete(a.takeover.id, tokenA);
    vi.advanceTimersByTime(2 * MINUTE);
    const b = broker.request({
      sandboxId: 'b',
      reason: 'r',
      timeoutMs: MINUTE,
      vncSocketPath: '/b/vnc.sock',
    });
    broker.cancelAllFor('b');
    expect(accessError(() => broker.authorize(a.takeover.id, tokenA)).status).toBe(404);
    expect(accessError(() => broker.authorize(b.takeover.id, 'x')).status).toBe(410);
  });

  describe('viewers', () => {
    function open(): { broker: TakeoverBroker; auth: AuthorizedTakeover; token: string; id: string } {
      const { broker, request, tokenOf } = setup();
      const { takeover } = request();
      return { broker, auth: broker.authorize(takeover.id, tokenOf()), token: tokenOf(), id: takeover.id };
    }

    it('gives control to the first viewer only; a watcher is never promoted', () => {
      const { auth } = open();
      const first = auth.attachViewer({ close: () => {} });
      const second = auth.attachViewer({ close: () => {} });
      expect([first.controls, second.controls]).toEqual([true, false]);
      first.detach();
      expect(second.controls).toBe(false);
      const third = auth.attachViewer({ close: () => {} });
      expect(third.controls).toBe(true);
    });

    it('lets the controller reconnect with its key and closes its stale socket', () => {
      const { broker, auth, id } = open();
      const closed: number[] = [];
      const old = auth.attachViewer({ key: 'k'.repeat(24), close: (code) => closed.push(code) });
      const watcher = auth.attachViewer({ key: 'w'.repeat(24), close: () => {} });
      const again = auth.attachViewer({ key: 'k'.repeat(24), close: () => {} });
      expect(closed).toEqual([CLOSE_CODES.replaced]);
      expect([old.controls, watcher.controls, again.controls]).toEqual([false, false, true]);
      expect(broker.get(id)?.viewers).toBe(2);
    });

    it('refuses a seat once the takeover ended', () => {
      const { broker, auth, token, id } = open();
      broker.cancel(id, token);
      expect(accessError(() => auth.attachViewer({ close: () => {} }))).toMatchObject({
        status: 410,
        details: { state: 'cancelled' },
      });
    });

    it('closes every viewer with the end state as close code', () => {
      const { broker, auth } = open();
      const codes: number[] = [];
      auth.attachViewer({ close: (code) => codes.push(code) });
      auth.attachViewer({ close: (code) => codes.push(code) });
      broker.close();
      expect(codes).toEqual([CLOSE_CODES.cancelled, CLOSE_CODES.cancelled]);
    });
  });

  it('keeps going when an event listener throws', async () => {
    const broker = new TakeoverBroker({
      baseUrl: 'http://h',
      onEvent: () => {
        throw new Error('listener bug');
      },
    });
    const { takeover, done } = broker.request({
      sandboxId: 's',
      reason: 'r',
      timeoutMs: MINUTE,
      vncSocketPath: '/s/vnc.sock',
    });
    const token = new URL(broker.linkFor(takeover.id)!).searchParams.get('token');
    broker.complete(takeover.id, token);
    await expect(done).resolves.toBe('completed');
  });
});

describe('TakeoverBroker until', () => {
  /** A watch the test resolves by hand, recording what it was asked and whether it was stopped. */
  function watched() {
    const browser = async () => ({});
    const calls: {
      browser: unknown;
      until: unknown;
      signal: AbortSignal;
      met: (m: 'url' | 'cookie') => void;
    }[] = [];
    const events: TakeoverEvent[] = [];
    const broker = new TakeoverBroker({
      baseUrl: 'http://h',
      onEvent: (e) => events.push(e),
      watchUntil: (on, until, signal) =>
        new Promise((resolve) => calls.push({ browser: on, until, signal, met: resolve })),
    });
    const request = (over: Partial<TakeoverRequest> = {}) =>
      broker.request({
        sandboxId: 'sb1',
        reason: 'Log in',
        timeoutMs: 5 * MINUTE,
        vncSocketPath: '/run/grexal-test/sb1/vnc.sock',
        browser,
        until: { url: 'https://app.example.test/home*' },
        ...over,
      });
    return { broker, browser, calls, events, request };
  }

  it('completes by itself when the condition is met: by condition, viewers told 4005', async () => {
    const { broker, browser, calls, events, request } = watched();
    const { takeover, done } = request();
    expect(calls.map((c) => [c.browser, c.until])).toEqual([
      [browser, { url: 'https://app.example.test/home*' }],
    ]);
    const token = new URL((events[0] as { url: string }).url).searchParams.get('token');
    const closes: number[] = [];
    broker.authorize(takeover.id, token).attachViewer({ close: (code) => closes.push(code) });
    calls[0]!.met('url');
    await expect(done).resolves.toBe('completed');
    expect(events.at(-1)).toMatchObject({ type: 'takeover.completed', by: 'condition' });
    expect(closes).toEqual([CLOSE_CODES.completedByCondition]);
    expect(calls[0]!.signal.aborted).toBe(true);
  });

  it('Done still works, says by user, and stops the watch', async () => {
    const { broker, calls, events, request } = watched();
    const { takeover, done } = request({ until: { cookie: 'sid' } });
    const token = new URL((events[0] as { url: string }).url).searchParams.get('token');
    broker.complete(takeover.id, token);
    await done;
    expect(events.at(-1)).toMatchObject({ type: 'takeover.completed', by: 'user' });
    expect(calls[0]!.signal.aborted).toBe(true);
    // A condition met after the end changes nothing.
    calls[0]!.met('cookie');
    await Promise.resolve();
    expect(events.filter((e) => e.type === 'takeover.completed')).toHaveLength(1);
  });

  it('refuses an invalid until before opening anything, naming the field', () => {
    const { broker, calls, request } = watched();
    const error = (() => {
      try {
        request({ until: { url: 'https://*' } });
      } catch (e) {
        return e as TakeoverError;
      }
      return undefined;
    })();
    expect(error?.code).toBe('invalid_request');
    expect(error?.message).toMatch(/^until\.url: /);
    expect(calls).toEqual([]);
    expect(broker.openFor('sb1')).toBeUndefined();
  });
});
