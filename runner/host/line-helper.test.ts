import { describe, expect, it } from 'vitest';
import { LineHelper } from './line-helper.ts';

/** The handles keeping this process alive, of the kinds a helper has. */
const held = () =>
  process.getActiveResourcesInfo().filter((r) => r === 'ProcessWrap' || r === 'PipeWrap').length;

describe('LineHelper', () => {
  it('keeps the process alive while an answer is awaited, and not while idle', async () => {
    const helper = new LineHelper(
      "import sys, time\nfor line in sys.stdin:\n    time.sleep(0.2)\n    print(line.split(' ')[0], 'got', line.split(' ')[1].strip(), flush=True)",
    );
    const before = held();
    try {
      const answer = helper.request(['a']);
      expect(held()).toBeGreaterThan(before);
      expect(await answer).toBe('got a');
      // Idle: a library user's process ends without closing the helper.
      expect(held()).toBe(before);
      expect(await helper.request(['b'])).toBe('got b');
      expect(held()).toBe(before);
    } finally {
      helper.close();
    }
  });

  it('answers undefined, at once, once the helper cannot run', async () => {
    const helper = new LineHelper('import sys; sys.exit(3)');
    expect(await helper.request(['a'])).toBeUndefined();
    expect(await helper.request(['b'])).toBeUndefined();
  });
});
