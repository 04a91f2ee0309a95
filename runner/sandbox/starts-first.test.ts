import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { StartsFirst } from './starts-first.ts';

describe('StartsFirst', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const settled = async (promise: Promise<void>) => {
    let done = false;
    void promise.then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(0);
    return done;
  };

  it('gives the turn at once when no run is starting', async () => {
    expect(await settled(new StartsFirst().turn())).toBe(true);
  });

  it('holds the turn until every run that was starting has started', async () => {
    const starts = new StartsFirst({ maxHoldMs: 1_000 });
    const first = starts.begin();
    const second = starts.begin();
    const turn = starts.turn();
    first.end();
    first.end(); // idempotent: the second run still counts
    expect(await settled(turn)).toBe(false);
    second.end();
    expect(await settled(turn)).toBe(true);
  });

  it("ends a run's start soon after its spawn when it prints nothing", async () => {
    const starts = new StartsFirst({ maxHoldMs: 10_000 });
    const start = starts.begin();
    const turn = starts.turn();
    start.spawned();
    await vi.advanceTimersByTimeAsync(249);
    expect(await settled(turn)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(turn)).toBe(true);
    start.end(); // after the tail: counted once
    const next = starts.begin();
    const held = starts.turn();
    expect(await settled(held)).toBe(false);
    next.end();
    expect(await settled(held)).toBe(true);
  });

  it('never holds longer than its bound, nor than the limit a caller gives', async () => {
    const starts = new StartsFirst({ maxHoldMs: 1_000 });
    starts.begin();
    const bounded = starts.turn();
    const limited = starts.turn(200);
    await vi.advanceTimersByTimeAsync(199);
    expect(await settled(limited)).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await settled(limited)).toBe(true);
    expect(await settled(bounded)).toBe(false);
    await vi.advanceTimersByTimeAsync(800);
    expect(await settled(bounded)).toBe(true);
    expect(await settled(starts.turn(0))).toBe(true);
  });

  it('lets containers go at once while the runner is at its cap, and when a start fills it', async () => {
    let full = true;
    const starts = new StartsFirst({ maxHoldMs: 1_000, mayHold: () => !full });
    starts.begin();
    expect(await settled(starts.turn())).toBe(true);
    full = false;
    const held = starts.turn();
    expect(await settled(held)).toBe(false);
    full = true; // the next run's start takes the last place under --max-sandboxes
    starts.begin();
    expect(await settled(held)).toBe(true);
  });
});
