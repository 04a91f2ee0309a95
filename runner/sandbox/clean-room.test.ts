import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { openCleanRoom, servedByAgent } from './clean-room.ts';

/** Records every step, in order, of the gate, the agent's container and the runner's CDP calls. */
function fakes(pageUrl: string, failOn?: string, pause: () => Promise<void> = async () => {}) {
  const steps: string[] = [];
  const cdp = async (method: string, params: Record<string, unknown> = {}, sessionId?: string) => {
    const target = method === 'Target.closeTarget' ? ` ${String(params['targetId'])}` : '';
    steps.push(
      `${method}${sessionId ? '@page' : ''}${params['url'] ? ` ${String(params['url'])}` : ''}${target}`,
    );
    if (method === failOn) throw new Error(`CDP ${method}: refused`);
    if (method === 'Target.getTargets')
      return {
        targetInfos: [
          { targetId: 'old', type: 'page', url: pageUrl },
          { targetId: 'w', type: 'worker', url: pageUrl },
          // The new tab, when the list comes after it was made: never closed.
          { targetId: 'fresh', type: 'page', url: 'about:blank' },
        ],
      };
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
    logger: pino({ level: 'silent' }),
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
      'Storage.clearDataForOrigin@page',
      'Network.enable@page',
      'Network.clearBrowserCache@page',
      'Network.disable@page',
      'Page.navigate@page https://login.example.test/signin?next=1',
      'Target.detachFromTarget',
      'Target.activateTarget',
    ]);
    steps.length = 0;
    await room.close();
    await room.close();
    expect(steps).toEqual(['unpause', 'resume']);
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
    expect(steps.slice(-2)).toEqual(['unpause', 'resume']);
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
