import { describe, expect, it } from 'vitest';
import { isImageReference } from '../runtime/index.ts';
import { devImageTag } from './agent-image.ts';

describe('devImageTag', () => {
  it('turns any directory name into a valid image reference', () => {
    const dirs = [
      '/x/Demo Agent',
      '/x/my..agent',
      '/x/agent-',
      '/x/._hidden',
      '/x/a_.b',
      '/x/ÄÖÜ',
      '/x/a__b',
      '/x/a--b',
    ];
    const tags = dirs.map(devImageTag);
    expect(tags.filter((t) => !isImageReference(t))).toEqual([]);
    expect(tags).toEqual([
      'grexal-dev/demo-agent',
      'grexal-dev/my-agent',
      'grexal-dev/agent',
      'grexal-dev/hidden',
      'grexal-dev/a-b',
      'grexal-dev/agent',
      'grexal-dev/a__b',
      'grexal-dev/a--b',
    ]);
  });
});
