import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { type NavigationHistory, openCleanRoom, servedByAgent, spareUnfit } from './clean-room.ts';

const SPARE_INFO = {
  targetId: 'spare',
  type: 'page',
  url: 'about:blank',
  canAccessOpener: false,
  browserContextId: 'default',
};
const BLANK_HISTORY: NavigationHistory = { currentIndex: 0, entries: [{ url: 'about:blank' }] };

/** Records every step, in order, of the gate, the agent's container and the runner's CDP calls. */
function fakes(
  pageUrl: string,
  failOn?: string,
  pause: () => Promise<void> = async () => {},
  spare?: { history: NavigationHistory; prepareFails?: boolean },
  popup = false,
) {
  const steps: string[] = [];
  const closed = new Set<string>();
  let lists = 0;
  const cdp = async (method: string, params: Record<string, unknown> = {}, sessionId?: string) => {
    const named = method === 'Target.closeTarget' || method === 'Target.activateTarget';
    const target = named ? ` ${String(params['targetId'])}` : '';
    steps.push(
      `${method}${sessionId ? '@page' : ''}${params['url'] ? ` ${String(params['url'])}` : ''}${target}`,
    );
    if (method === failOn) throw new Error(`CDP ${method}: refused`);
    if (method === 'Target.closeTarget') closed.add(String(params['targetId']));
    if (method === 'Target.getTargets')
      return {
        targetInfos: [
          { targetId: 'old', type: 'page', url: pageUrl },
          { targetId: 'w', type: 'worker', url: pageUrl },
          // The new tab, when the list comes after it was made: never closed.
          { targetId: 'fresh', type: 'page', url: 'about:blank' },
          ...(spare ? [SPARE_INFO] : []),
          // A popup an agent page opened just after the first list.
          ...(popup && lists++ > 0 ? [{ targetId: 'popup', type: 'page', url: pageUrl }] : []),
        ].filter((t) => !closed.has(t.targetId)),
      };
    if (method === 'Target.getTargetInfo') return { targetInfo: SPARE_INFO };
    if (method === 'Target.getBrowserContexts') return { browserContextIds: ['agents-own'] };
    if (method === 'Page.getNavigationHistory') return spare?.history;
    if (method === 'Target.createTarget') return { targetId: 'fresh' };
    if (method === 'Target.attachToTarget') return { sessionId: 's1' };
    return {};
  };
  const deps = {
    agent: {
      pause: async () => {
        steps.push('pause');
        await pause();
      },
      unpause: async () => void steps.push('unpause'),
    },
    gate: { cut: () => void steps.push('cut'), resume: () => void steps.push('resume') },
    cdp: cdp as never,
    cdpEvents: () => () => {},
    logger: pino({ level: 'silent' }),
    ...(spare
      ? {
          spare: {
            take: async () => ({ targetId: 'spare', browserContextId: 'default' }),
            prepare: async () => {
              steps.push('prepare spare');
              if (spare.prepareFails) throw new Error('no tab');
            },
          },
        }
      : {}),
  };
  return { steps, deps };
}

describe('openCleanRoom', () => {
  it('cuts, freezes, clears the origin and loads the page in a new tab before the takeover; close thaws and resumes', async () => {
    const { steps, deps } = fakes('https://login.example.test/signin?next=1');
    const room = await openCleanRoom(deps);
    expect(room).toMatchObject({ url: 'https://login.example.test/signin?next=1', frozen: true });
    // The freeze and the fresh page run at once (both before the link exists).
    expect(steps.filter((step) => step === 'pause')).toEqual(['pause']);
    expect(steps.filter((step) => step !== 'pause')).toEqual([
      'cut',
      'Target.getTargets',
      'Target.createTarget about:blank',
      'Target.closeTarget old',
      'Target.attachToTarget',
      'Target.setAutoAttach@page',
      'Storage.clearDataForOrigin@page',
      'Network.enable@page',
      'Network.setBypassServiceWorker@page',
      'Network.clearBrowserCache@page',
      'Page.navigate@page https://login.example.test/signin?next=1',
      'Target.activateTarget fresh',
      // Nothing left to close: the agent's page is gone, the user's is kept.
      'Target.getTargets',
    ]);
    // The page's session stays for the takeover: the bypass lasts only while it is attached.
    steps.length = 0;
    await room.close();
    await room.close();
    expect(steps).toEqual(['unpause', 'Target.detachFromTarget', 'resume']);
  });

  it('closes a page opened after the list, before the room opens', async () => {
    for (const url of ['https://login.example.test/', undefined]) {
      const { steps, deps } = fakes(url ?? 'about:blank', undefined, undefined, undefined, true);
      let shownAt = -1;
      Object.assign(deps, { onShown: () => (shownAt = steps.length) });
      await openCleanRoom(deps);
      // Once the page is shown and the agent frozen, the popup is closed; the user's tab is not.
      const late = steps.slice(shownAt);
      expect(late).toContain('Target.closeTarget popup');
      expect(steps.filter((s) => s.startsWith('Target.closeTarget'))).not.toContain(
        'Target.closeTarget fresh',
      );
    }
  });

  it("leaves the agent running when the page is the agent's own, on the sandbox's loopback", async () => {
    const { steps, deps } = fakes('http://127.0.0.1:8080/login');
    const room = await openCleanRoom(deps);
    expect(room.frozen).toBe(false);
    expect(steps).not.toContain('pause');
    await room.close();
    expect(steps.slice(-1)).toEqual(['resume']);
  });

  it('thaws and lets the agent back in when the page cannot be loaded, and throws', async () => {
    const { steps, deps } = fakes('https://login.example.test/', 'Page.navigate');
    await expect(openCleanRoom(deps)).rejects.toThrow(/Page.navigate/);
    expect(steps.slice(-3)).toEqual(['unpause', 'Target.detachFromTarget', 'resume']);
  });

  it('says the page is shown once it is navigated, before the freeze has finished; the room waits for both', async () => {
    let thaw!: () => void;
    const frozen = new Promise<void>((resolve) => {
      thaw = resolve;
    });
    const { steps, deps } = fakes('https://login.example.test/', undefined, () => frozen);
    const shown = new Promise<string[]>((resolve) => {
      Object.assign(deps, { onShown: () => resolve([...steps]) });
    });
    let opened = false;
    const room = openCleanRoom(deps).then((made) => {
      opened = true;
      return made;
    });
    const before = await shown;
    expect(before.slice(-1)).toEqual(['Page.navigate@page https://login.example.test/']);
    expect(before).toContain('Network.clearBrowserCache@page');
    expect(opened).toBe(false);
    thaw();
    expect((await room).frozen).toBe(true);
  });

  it('freezes only once freezeWhen settles, after the page is shown, and opens the room only then', async () => {
    const { steps, deps } = fakes('https://login.example.test/');
    let freezeNow!: () => void;
    const freezeWhen = new Promise<void>((resolve) => {
      freezeNow = resolve;
    });
    const shown = new Promise<void>((resolve) => {
      Object.assign(deps, { onShown: resolve, freezeWhen });
    });
    let opened = false;
    const room = openCleanRoom(deps).then((made) => {
      opened = true;
      return made;
    });
    await shown;
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect([steps.includes('pause'), opened]).toEqual([false, false]);
    freezeNow();
    expect((await room).frozen).toBe(true);
    expect(steps).toContain('pause');
  });

  it('shows nothing when the page cannot be loaded', async () => {
    const { deps } = fakes('https://login.example.test/', 'Page.navigate');
    let shown = false;
    await expect(
      openCleanRoom({
        ...deps,
        onShown: () => {
          shown = true;
        },
      }),
    ).rejects.toThrow(/Page.navigate/);
    expect(shown).toBe(false);
  });

  it('fails the room when the freeze is refused, and lets the agent back in', async () => {
    // runc's "unable to freeze" is tried again by the runtime itself (runner/runtime/docker-calls.ts).
    const { steps, deps } = fakes('https://login.example.test/', undefined, async () => {
      throw new Error('No such container');
    });
    await expect(openCleanRoom(deps)).rejects.toThrow(/No such container/);
    expect(steps.filter((step) => step === 'pause')).toEqual(['pause']);
    expect(steps.slice(-1)).toEqual(['resume']);
  });

  it("uses the spare tab when it is as made: no new tab, brought to the front while the agent's close", async () => {
    const { steps, deps } = fakes('https://login.example.test/signin', undefined, undefined, {
      history: BLANK_HISTORY,
    });
    const room = await openCleanRoom(deps);
    expect(room.url).toBe('https://login.example.test/signin');
    expect(steps).not.toContain('Target.createTarget about:blank');
    const after = steps.filter((step) => step !== 'pause' && !step.startsWith('Target.get'));
    expect(after).toEqual([
      'cut',
      'Target.attachToTarget',
      'Page.getNavigationHistory@page',
      'Target.activateTarget spare',
      'Target.closeTarget old',
      // The agent's never-used new-tab slot: 'fresh' is a page the agent opened, closed too.
      'Target.closeTarget fresh',
      'Target.setAutoAttach@page',
      'Storage.clearDataForOrigin@page',
      'Network.enable@page',
      'Network.setBypassServiceWorker@page',
      'Network.clearBrowserCache@page',
      'Page.navigate@page https://login.example.test/signin',
      'Target.activateTarget spare',
    ]);
  });

  it('makes the next spare as it closes, beside the thaw and before the agent is let back in; not before a stop', async () => {
    for (const prepareFails of [false, true]) {
      const { steps, deps } = fakes('https://login.example.test/', undefined, undefined, {
        history: BLANK_HISTORY,
        prepareFails,
      });
      const room = await openCleanRoom(deps);
      steps.length = 0;
      await room.close();
      expect([...steps].sort()).toEqual(['Target.detachFromTarget', 'prepare spare', 'resume', 'unpause']);
      expect(steps.at(-1)).toBe('resume');
    }
    const { steps, deps } = fakes('https://login.example.test/', undefined, undefined, {
      history: BLANK_HISTORY,
    });
    const room = await openCleanRoom(deps);
    steps.length = 0;
    await room.close({ nextSpare: false });
    expect(steps).toEqual(['unpause', 'Target.detachFromTarget', 'resume']);
  });

  it("falls back to a new tab, and closes the spare with the agent's pages, when the spare was used", async () => {
    const { steps, deps } = fakes('https://login.example.test/', undefined, undefined, {
      history: { currentIndex: 1, entries: [{ url: 'about:blank' }, { url: 'about:blank#x' }] },
    });
    await openCleanRoom(deps);
    expect(steps).toContain('Target.createTarget about:blank');
    expect(steps).toContain('Target.closeTarget spare');
    expect(steps).toContain('Target.closeTarget old');
    expect(steps).not.toContain('Target.closeTarget fresh');
  });

  it('takes the spare only when it is the page made, blank, without opener, in the default context', () => {
    const spare = { targetId: 'spare', browserContextId: 'default' };
    expect(spareUnfit(spare, SPARE_INFO, BLANK_HISTORY, ['agents-own'])).toBeUndefined();
    // Before its first navigation commits, its one entry is ''.
    expect(
      spareUnfit(spare, { ...SPARE_INFO, url: '' }, { currentIndex: 0, entries: [{ url: '' }] }, []),
    ).toBe(undefined);
    const cases: Array<
      [string, Partial<typeof SPARE_INFO> & { openerId?: string }, NavigationHistory?, string[]?]
    > = [
      ['navigated', { url: 'https://agent.test/' }],
      ['history', {}, { currentIndex: 1, entries: [{ url: 'about:blank' }, { url: 'about:blank' }] }],
      ['history', {}, { currentIndex: 0, entries: [{ url: 'about:blank#planted' }] }],
      ['history', {}, { currentIndex: 0, entries: [] }],
      ['opener', { openerId: 'agent-page' }],
      ['opener', { canAccessOpener: true }],
      ['browser context', { browserContextId: 'agents-own' }],
      ['browser context', {}, BLANK_HISTORY, ['default']],
      ['not the page made', { type: 'tab' }],
    ];
    for (const [why, info, history, contexts] of cases)
      expect(
        spareUnfit(spare, { ...SPARE_INFO, ...info }, history ?? BLANK_HISTORY, contexts ?? []),
        why,
      ).toBe(why);
  });

  it('tells loopback from everything else', () => {
    for (const url of [
      'http://127.0.0.1:1/',
      'http://localhost/',
      'http://a.localhost/',
      'http://[::1]:9/',
      'http://127.9.9.9/',
    ])
      expect(servedByAgent(url), url).toBe(true);
    for (const url of [
      'https://login.example.test/',
      'http://10.0.0.1/',
      'http://128.0.0.1/',
      'http://localhost.example/',
    ])
      expect(servedByAgent(url), url).toBe(false);
  });
});
