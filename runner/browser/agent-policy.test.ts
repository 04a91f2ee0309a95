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

  it('passes everything else untouched', () => {
    const message = { id: 3, method: 'Runtime.evaluate', params: { expression: '1' }, sessionId: 'S1' };
    expect(screenAgentMessage(message, {})).toEqual({ message });
  });
});
