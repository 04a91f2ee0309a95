import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GrexalError, ValidationError } from '../errors.ts';
import { parseDurationMs } from '../sandbox/units.ts';
import { type EntryFactory, type PoolEntry, Pools, parsePoolFlag, parsePoolSpec } from './index.ts';

/**
 * Waits for what the pool does in the background (refills hold back up to a second): bounded,
 * but never a time the test asserts, so a loaded machine cannot fail it.
 */
const settled = <T>(check: () => T | Promise<T>, interval = 25) =>
  vi.waitFor(check, { timeout: 15_000, interval });

class FakeEntry implements PoolEntry {
  destroyed = false;
  private end!: () => void;
  readonly exited = new Promise<void>((resolve) => {
    this.end = resolve;
  });
  constructor(
    readonly id: string,
    readonly imageId: string,
  ) {}
  async destroy() {
    this.destroyed = true;
    this.end();
  }
  die() {
    this.end();
  }
}

class FakeFactory implements EntryFactory<FakeEntry> {
  made: FakeEntry[] = [];
  running = 0;
  maxRunning = 0;
  image = 'sha256:a';
  fail = false;
  /** When set, starts wait for it: a test holds an entry mid-start. */
  gate?: Promise<void>;
  async create() {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await this.gate;
    this.running--;
    if (this.fail) throw new GrexalError('E_SANDBOX_START_FAILED', 'no');
    const entry = new FakeEntry(`e${this.made.length}`, this.image);
    this.made.push(entry);
    return entry;
  }
  async imageId() {
    return this.image;
  }
}

const logger = pino({ level: 'silent' });
let pools: Pools<FakeEntry> | undefined;
afterEach(async () => {
  await pools?.close();
  pools = undefined;
});

function make(factory: FakeFactory, options: { concurrency?: number; refillHoldMs?: number } = {}) {
  pools = new Pools({ factory, logger, checkIntervalMs: 20, refillHoldMs: 0, ...options });
  return pools;
}

const live = (factory: FakeFactory) => factory.made.filter((e) => !e.destroyed);

describe('pool spec', () => {
  it('validates with codes, paths and fixes', () => {
    const problems = (name: unknown, body: unknown) => {
      try {
        parsePoolSpec(name, body);
        return [];
      } catch (error) {
        return (error as ValidationError).problems.map((p) => `${p.code} ${p.path}${p.fix ? ' +fix' : ''}`);
      }
    };
    expect(problems('sh', { image: 'grexal/agent', size: 65 })).toEqual(['E_POOL_SIZE_INVALID size +fix']);
    expect(problems('sh', { image: 'grexal/agent', size: -1 })).toEqual(['E_POOL_SIZE_INVALID size +fix']);
    expect(problems('Bad Name', { image: 'grexal/agent' })).toEqual(['E_POOL_NAME_INVALID name +fix']);
    expect(problems('sh', { image: 'grexal/agent', maxIdleMs: 5 })).toEqual([
      'E_POOL_MAX_IDLE_INVALID maxIdleMs +fix',
    ]);
    expect(problems('sh', { image: 'grexal/agent', command: ['x'] })).toEqual(['E_FIELD_UNKNOWN  +fix']);
    expect(problems('sh', {})).toEqual(['E_FIELD_REQUIRED image +fix']);
    expect(parsePoolSpec('sh', { image: 'grexal/agent' })).toEqual({
      name: 'sh',
      image: 'grexal/agent',
      size: 2,
      maxIdleMs: 1_800_000,
    });
  });

  it('parses the --pool flag', () => {
    expect(
      parsePoolFlag('d=grexal/desktop,desktop,size=3,maxIdle=10m,runtime=runsc', parseDurationMs),
    ).toEqual({
      name: 'd',
      image: 'grexal/desktop',
      desktop: true,
      runtime: 'runsc',
      size: 3,
      maxIdleMs: 600_000,
    });
    for (const bad of ['grexal/agent', 'x=', 'x=grexal/agent,colour=red', 'x=grexal/agent,maxIdle=soon'])
      expect(() => parsePoolFlag(bad, parseDurationMs)).toThrow(ValidationError);
    expect(() => parsePoolFlag('x=grexal/agent,size=99', parseDurationMs)).toThrow(/Outside 0\.\.64/);
  });
});

describe('Pools', () => {
  it('fills to size with bounded concurrency, serves only the exact key, refills after a claim', async () => {
    const factory = new FakeFactory();
    const p = make(factory, { concurrency: 2 });
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 5 }), 'k');
    await settled(() => expect(p.get('sh')?.ready).toBe(5));
    expect(factory.maxRunning).toBe(2);
    expect(p.claim('other')).toBeUndefined();
    expect(p.claim('k', 'nope')).toBeUndefined();
    const claim = p.claim('k', 'sh');
    expect(claim?.pool).toBe('sh');
    expect(p.get('sh')?.ready).toBe(4);
    await settled(() => expect(p.get('sh')?.ready).toBe(5));
    expect(factory.made).toHaveLength(6);
    // A claimed entry is never handed out again.
    const ids = new Set([claim?.entry.id]);
    for (let i = 0; i < 5; i++) {
      const next = p.claim('k');
      expect(ids.has(next!.entry.id)).toBe(false);
      ids.add(next!.entry.id);
    }
  });

  it('an empty pool (size 0) serves nothing', async () => {
    const factory = new FakeFactory();
    const p = make(factory);
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 0 }), 'k');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(p.claim('k')).toBeUndefined();
    expect(factory.made).toHaveLength(0);
  });

  it('gives back an entry whose request was refused', async () => {
    const factory = new FakeFactory();
    const p = make(factory);
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 1 }), 'k');
    await settled(() => expect(p.get('sh')?.ready).toBe(1));
    const claim = p.claim('k')!;
    claim.giveBack();
    expect(p.claim('k')?.entry).toBe(claim.entry);
  });

  it('replaces entries idle past maxIdle', async () => {
    const factory = new FakeFactory();
    const p = make(factory);
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 1, maxIdleMs: 1000 }), 'k');
    await settled(() => expect(factory.made).toHaveLength(1));
    await settled(() => expect(factory.made[0]?.destroyed).toBe(true));
    await settled(() => expect(live(factory)).toHaveLength(1));
  });

  it('retires the entries of a changed image one at a time, never claiming them', async () => {
    const factory = new FakeFactory();
    const p = make(factory, { concurrency: 4 });
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 4 }), 'k');
    await settled(() => expect(p.get('sh')?.ready).toBe(4));
    factory.image = 'sha256:b';
    let minLive = 4;
    await settled(() => {
      minLive = Math.min(minLive, live(factory).length);
      expect(live(factory).every((e) => e.imageId === 'sha256:b')).toBe(true);
      expect(live(factory)).toHaveLength(4);
    }, 2);
    expect(minLive).toBeGreaterThanOrEqual(3);
    expect(p.claim('k')?.entry.imageId).toBe('sha256:b');
  });

  it('counts failures, backs off, reports them, and recovers', async () => {
    const factory = new FakeFactory();
    factory.fail = true;
    const p = make(factory);
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 3 }), 'k');
    await settled(() => expect(p.get('sh')?.failing?.consecutiveFailures).toBeGreaterThanOrEqual(2));
    const status = p.get('sh')!;
    expect(status.failing?.code).toBe('E_SANDBOX_START_FAILED');
    // Backing off: a handful of attempts, not a tight loop.
    expect(status.failures).toBeLessThan(5);
    factory.fail = false;
    await settled(() => expect(p.get('sh')?.ready).toBe(3));
    expect(p.get('sh')?.failing).toBeUndefined();
  });

  it('replaces an entry that dies while idle and counts it', async () => {
    const factory = new FakeFactory();
    const p = make(factory);
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 1 }), 'k');
    await settled(() => expect(p.get('sh')?.ready).toBe(1));
    factory.made[0]?.die();
    await settled(() => expect(p.get('sh')?.failures).toBe(1));
    await settled(() => expect(p.get('sh')?.ready).toBe(1));
  });

  it('drains on close and on delete', async () => {
    const factory = new FakeFactory();
    const p = make(factory);
    p.set(parsePoolSpec('a', { image: 'grexal/agent', size: 2 }), 'k');
    p.set(parsePoolSpec('b', { image: 'grexal/agent', size: 1 }), 'j');
    await settled(() => expect(live(factory)).toHaveLength(3));
    expect(await p.delete('b')).toBe(true);
    expect(await p.delete('b')).toBe(false);
    expect(live(factory)).toHaveLength(2);
    await p.close();
    expect(live(factory)).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(live(factory)).toHaveLength(0);
  });
});

describe('Pools under the runner cap (--max-sandboxes)', () => {
  /** A cap of `max` with `live` live sandboxes, changed by the test as runs come and go. */
  const capped = (p: Pools<FakeEntry>, max: number) => {
    const cap = { live: 0 };
    p.limit({ max, live: () => cap.live });
    return cap;
  };

  it('holds no more entries than the cap leaves, and says so', async () => {
    const factory = new FakeFactory();
    const p = make(factory, { concurrency: 4 });
    capped(p, 3);
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 5 }), 'k');
    await settled(() => expect(p.get('sh')?.ready).toBe(3));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(live(factory)).toHaveLength(3);
    expect(p.get('sh')?.limitedBy).toBe('max-sandboxes');
  });

  it('gives idle entries up to cold sandboxes, and refills once runs end', async () => {
    const factory = new FakeFactory();
    const p = make(factory);
    const cap = capped(p, 3);
    p.set(parsePoolSpec('a', { image: 'grexal/agent', size: 2 }), 'k');
    await settled(() => expect(p.get('a')?.ready).toBe(2));
    // A cold sandbox counts as live: the pools give one entry up, not the run.
    cap.live = 2;
    expect(p.makeRoom()).toBe(1);
    expect(live(factory)).toHaveLength(1);
    cap.live = 3;
    expect(p.makeRoom()).toBe(1);
    expect(live(factory)).toHaveLength(0);
    expect(p.makeRoom()).toBe(0);
    expect(p.get('a')).toMatchObject({ ready: 0, limitedBy: 'max-sandboxes' });
    // Every place a live sandbox's (entries do not count: they give way).
    expect(p.full).toBe(true);
    // Runs end: the pool refills into the room they leave, and no further.
    cap.live = 1;
    p.wake();
    await settled(() => expect(p.get('a')?.ready).toBe(2));
    expect(p.full).toBe(false);
    expect(p.get('a')?.limitedBy).toBeUndefined();
    expect(live(factory)).toHaveLength(2);
  });

  it('destroys an entry that finished starting once live sandboxes took its room', async () => {
    const factory = new FakeFactory();
    const p = make(factory);
    const cap = capped(p, 2);
    let open!: () => void;
    factory.gate = new Promise((resolve) => {
      open = resolve;
    });
    p.set(parsePoolSpec('a', { image: 'grexal/agent', size: 1 }), 'k');
    await settled(() => expect(factory.running).toBe(1));
    cap.live = 2;
    open();
    await settled(() => expect(factory.made).toHaveLength(1));
    await settled(() => expect(factory.made[0]?.destroyed).toBe(true));
    expect(p.get('a')?.ready).toBe(0);
  });

  it('without a cap, holds its size whatever runs', async () => {
    const factory = new FakeFactory();
    const p = make(factory);
    p.set(parsePoolSpec('a', { image: 'grexal/agent', size: 2 }), 'k');
    await settled(() => expect(p.get('a')?.ready).toBe(2));
    expect(p.makeRoom()).toBe(0);
    expect(p.get('a')?.limitedBy).toBeUndefined();
  });
});

describe('the refill after claims', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits for a burst of claims to pause (bounded) before it starts entries', async () => {
    vi.useFakeTimers();
    const factory = new FakeFactory();
    const p = make(factory, { concurrency: 4, refillHoldMs: 1_000 });
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 4 }), 'k');
    await vi.advanceTimersByTimeAsync(100);
    expect(p.get('sh')?.ready).toBe(4);
    // Claims 500 ms apart keep holding the refill, up to 4 holds after the first claim.
    for (let i = 0; i < 4; i++) {
      expect(p.claim('k')).toBeDefined();
      await vi.advanceTimersByTimeAsync(500);
      expect(factory.made).toHaveLength(4);
    }
    // The bound: 4 s after the first claim the refill starts though claims continue.
    await vi.advanceTimersByTimeAsync(2_100);
    expect(factory.made.length).toBeGreaterThan(4);
    await vi.advanceTimersByTimeAsync(100);
    expect(p.get('sh')?.ready).toBe(4);
  });

  it("holds each pool's refill by its own policy, and a drained pool refills once its hold is over", async () => {
    vi.useFakeTimers();
    const factory = new FakeFactory();
    const p = make(factory, { concurrency: 4, refillHoldMs: 250 });
    p.set(parsePoolSpec('sh', { image: 'grexal/agent', size: 1 }), 'agent');
    // As the runner sets a desktop pool: its claimed run's first takeover frame comes a second
    // after the claim, and the refill must not start a desktop under it.
    p.set(parsePoolSpec('desk', { image: 'grexal/desktop', size: 1 }), 'desktop', { refillHoldMs: 1_000 });
    await vi.advanceTimersByTimeAsync(100);
    expect([p.get('sh')?.ready, p.get('desk')?.ready]).toEqual([1, 1]);
    expect(p.claim('agent')).toBeDefined();
    expect(p.claim('desktop')).toBeDefined();
    expect([p.get('sh')?.ready, p.get('desk')?.ready]).toEqual([0, 0]);
    // The agent pool's hold is over: it refills; the desktop pool still holds, starting nothing.
    await vi.advanceTimersByTimeAsync(400);
    expect(p.get('sh')?.ready).toBe(1);
    expect(p.get('desk')).toMatchObject({ ready: 0, starting: 0 });
    expect(factory.made).toHaveLength(3);
    // Drained, it refills once its own hold is over, not later.
    await vi.advanceTimersByTimeAsync(700);
    expect(p.get('desk')?.ready).toBe(1);
    expect(factory.made).toHaveLength(4);
  });
});
