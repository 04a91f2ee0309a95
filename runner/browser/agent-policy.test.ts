import { describe, expect, it } from 'vitest';
import { screenAgentMessage } from './agent-policy.ts';

describe('screenAgentMessage', () => {
  it("puts an allowed download into the relay's directory, whatever path the agent named", () => {
    for (const behavior of ['allow', 'allowAndName']) {
      expect(
        screenAgentMessage(
          { id: 1, method: 'Page.setDownloadBehavior', params: { behavior, downloadPath: '/etc' } },
          { downloadsDir: '/tmp/p/downloads' },
        ),
      ).toEqual({
        message: {
          id: 1,
          method: 'Page.setDownloadBehavior',
          params: { behavior, downloadPath: '/tmp/p/downloads' },
        },
      });
    }
  });

  it('denies downloads without a directory, and leaves deny and default alone', () => {
    const screened = screenAgentMessage(
      { id: 1, method: 'Browser.setDownloadBehavior', params: { behavior: 'allow' } },
      {},
    );
    expect(screened).toEqual({
      message: { id: 1, method: 'Browser.setDownloadBehavior', params: { behavior: 'deny' } },
    });
    const kept = screenAgentMessage(
      { id: 2, method: 'Browser.setDownloadBehavior', params: { behavior: 'default', downloadPath: '/x' } },
      {},
    );
    expect(kept).toEqual({
      message: { id: 2, method: 'Browser.setDownloadBehavior', params: { behavior: 'default' } },
    });
  });

  it('turns Browser.close into a disconnect, and refuses the crash methods', () => {
    for (const params of [undefined, {}, { anything: 1 }]) {
      const screened = screenAgentMessage({ id: 3, method: 'Browser.close', params }, {});
      expect(screened).toEqual({ disconnect: expect.stringMatching(/^Browser\.close: /) });
      // A WebSocket close reason holds at most 123 bytes.
      expect(Buffer.byteLength((screened as { disconnect: string }).disconnect)).toBeLessThanOrEqual(123);
    }
    for (const method of ['Browser.crash', 'Browser.crashGpuProcess'])
      expect(screenAgentMessage({ id: 4, method }, {})).toEqual({
        error: { code: -32000, message: `${method} is not available through the runner's CDP relay.` },
      });
  });

  it('passes everything else untouched', () => {
    const message = { id: 3, method: 'Runtime.evaluate', params: { expression: '1' }, sessionId: 'S1' };
    expect(screenAgentMessage(message, {})).toEqual({ message });
  });
});
