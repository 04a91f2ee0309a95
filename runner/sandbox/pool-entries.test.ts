import { describe, expect, it } from 'vitest';
import type { ValidationError } from '../errors.ts';
import { parsePoolSpec } from '../pool/index.ts';
import type { EngineInfo, ImageInfo } from '../runtime/index.ts';
import { checkPoolSpec, poolKey } from './pool-entries.ts';

const agent: ImageInfo = {
  tag: 'grexal/agent',
  id: 'sha256:a',
  labels: { 'grexal.image': 'agent' },
  sizeBytes: 1,
};
const engine = {
  image: async (tag: string) => (tag === 'grexal/agent' ? agent : undefined),
  info: async () => ({ runtimes: ['runc'] }) as unknown as EngineInfo,
};

async function problems(body: unknown): Promise<string[]> {
  try {
    await checkPoolSpec(parsePoolSpec('sh', body), engine);
    return [];
  } catch (error) {
    return (error as ValidationError).problems.map((p) => `${p.code} ${p.path}${p.fix ? ' +fix' : ''}`);
  }
}

describe('checkPoolSpec', () => {
  it('refuses a run limit (limits.timeoutMs) with its path and fix, alongside other problems', async () => {
    expect(await problems({ image: 'grexal/agent', limits: { timeoutMs: 60_000 } })).toEqual([
      'E_POOL_RUN_LIMIT limits.timeoutMs +fix',
    ]);
    expect(await problems({ image: 'grexal/nonesuch', limits: { timeoutMs: 60_000 } })).toEqual([
      'E_POOL_RUN_LIMIT limits.timeoutMs +fix',
      'E_POOL_IMAGE_NOT_FOUND image +fix',
    ]);
  });

  it('accepts the limits that shape the container, and keys the pool on them', async () => {
    const options = await checkPoolSpec(
      parsePoolSpec('sh', { image: 'grexal/agent', limits: { memoryBytes: 256 * 2 ** 20, cpus: 1 } }),
      engine,
    );
    expect(options.limits.memoryBytes).toBe(256 * 2 ** 20);
    expect(poolKey(options)).not.toBe(
      poolKey(await checkPoolSpec(parsePoolSpec('sh', { image: 'grexal/agent' }), engine)),
    );
  });
});
