import { describe, expect, it } from 'vitest';
import type { EngineInfo, ImageInfo } from '../runtime/index.ts';
import { Preflight } from './preflight.ts';

function engine(images: Set<string>) {
  const calls = { image: 0, info: 0 };
  return {
    calls,
    runtime: {
      async image(tag: string): Promise<ImageInfo | undefined> {
        calls.image++;
        return images.has(tag) ? { tag, id: 'sha256:x', labels: {}, sizeBytes: 1 } : undefined;
      },
      async info(): Promise<EngineInfo> {
        calls.info++;
        return { runtimes: ['runc'] } as EngineInfo;
      },
    },
  };
}

describe('Preflight', () => {
  it('shares one engine lookup among concurrent creates of a found image', async () => {
    const { runtime, calls } = engine(new Set(['a']));
    const preflight = new Preflight(runtime);
    await Promise.all(Array.from({ length: 20 }, () => preflight.check('a', undefined)));
    await preflight.check('a', undefined);
    expect(calls.image).toBe(1);
  });

  it('does not remember a missing image: one built meanwhile is usable at once', async () => {
    const images = new Set<string>();
    const { runtime, calls } = engine(images);
    const preflight = new Preflight(runtime);
    await expect(preflight.check('b', undefined)).rejects.toMatchObject({ code: 'E_IMAGE_NOT_FOUND' });
    images.add('b');
    await expect(preflight.check('b', undefined)).resolves.toBeUndefined();
    expect(calls.image).toBe(2);
  });

  it('refuses a runtime the engine lacks, naming the ones it has', async () => {
    const { runtime } = engine(new Set(['a']));
    await expect(new Preflight(runtime).check('a', 'runsc')).rejects.toMatchObject({
      code: 'E_RUNTIME_NOT_FOUND',
      message: expect.stringContaining('runc'),
    });
  });
});
