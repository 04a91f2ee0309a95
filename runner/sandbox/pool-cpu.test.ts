/**
 * A pool entry warms at a low CPU weight and its claimed run gets the default weight back: on a
 * real Runner over the fake engine, whose "supervisor" asks for its bootstrap and runs nothing.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type FakeContainer, type FakeRuntime, fakeRunner } from '../api/testing/fake-runtime.ts';
import { parsePoolSpec } from '../pool/index.ts';
import { DEFAULT_CPU_SHARES } from '../runtime/index.ts';
import { CtxLink } from './fake-supervisor-link.ts';
import type { Runner } from './index.ts';
import { ENTRY_CPU_SHARES } from './pool-entries.ts';

// Bounded waits for the pool's background work; no time is asserted.
const settled = <T>(check: () => T | Promise<T>) => vi.waitFor(check, { timeout: 15_000, interval: 25 });

let runner: Runner;
let runtime: FakeRuntime;
let dispose: (() => Promise<void>) | undefined;

afterEach(async () => {
  await dispose?.();
  dispose = undefined;
});

async function setUp(): Promise<void> {
  ({ runner, runtime, dispose } = await fakeRunner());
  runtime.onStart = (container: FakeContainer) => {
    void (async () => {
      const link = await CtxLink.open(join(container.spec.hostRunDir, 'ctx.sock')).catch(() => undefined);
      await link?.call('bootstrap', { argv: [] }).catch(() => undefined);
      link?.close();
      container.end(0);
    })();
  };
}

const containerOf = (sandboxId: string) => runtime.containers.find((c) => c.sandboxId === sandboxId)!;

describe('a pool entry’s CPU weight', () => {
  it('is low while the entry starts and the default before it can be claimed; a cold sandbox never changes it', async () => {
    await setUp();
    // As a library caller writes it: the defaults (maxIdle) are filled in by setPool.
    await runner.setPool({ name: 'sh', image: 'grexal/agent', size: 1 });
    await settled(() => expect(runner.pools.get('sh')?.ready).toBe(1));
    const [entry] = runtime.containers;
    expect(entry!.spec.cpuShares).toBe(ENTRY_CPU_SHARES);
    expect(ENTRY_CPU_SHARES).toBeLessThan(DEFAULT_CPU_SHARES);
    // Ready means the default is back: the claim below calls no engine for it.
    expect(entry!.cpuShares).toEqual([DEFAULT_CPU_SHARES]);

    const warm = await runner.create({ image: 'grexal/agent', command: ['true'] });
    expect(warm.warm).toBe(true);
    expect(containerOf(warm.id)).toBe(entry);
    expect(entry!.cpuShares).toEqual([DEFAULT_CPU_SHARES]);

    const cold = await runner.create({ image: 'grexal/agent', command: ['true'], pool: 'nonesuch' });
    expect(cold.warm).toBe(false);
    await cold.start();
    expect(containerOf(cold.id).spec.cpuShares).toBeUndefined();
    expect(containerOf(cold.id).cpuShares).toEqual([]);
    await cold.exited;
  });

  it('an entry whose weight cannot be given back is never ready: it is counted as failed and removed', async () => {
    await setUp();
    const start = runtime.onStart;
    runtime.onStart = (container) => {
      if (runtime.containers.length === 1)
        container.setCpuShares = async () => {
          throw new Error('the engine refused the update');
        };
      start(container);
    };
    await runner.setPool(parsePoolSpec('sh', { image: 'grexal/agent', size: 1 }));
    await settled(() => expect(runner.pools.get('sh')?.failures).toBe(1));
    expect(runtime.containers[0]!.removed).toBe(true);
    // The next attempt (after the pool's backoff) is an entry like any other.
    await settled(() => expect(runner.pools.get('sh')?.ready).toBe(1));
    expect(runtime.containers.filter((c) => !c.removed)).toHaveLength(1);
    expect((await runner.create({ image: 'grexal/agent', command: ['true'] })).warm).toBe(true);
  });

  it("is never set for a spec setPool refuses: a library caller gets the API's validation", async () => {
    await setUp();
    const refused = await runner
      .setPool({ name: 'sh', image: 'grexal/agent', size: 65 })
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'E_VALIDATION',
      problems: [expect.objectContaining({ path: 'size', code: 'E_POOL_SIZE_INVALID' })],
    });
    expect(runner.pools.get('sh')).toBeUndefined();
    expect(runtime.containers).toEqual([]);
  });
});
