import { describe, expect, it } from 'vitest';
import {
  HiddenTargets,
  NO_SUCH_SESSION,
  NO_SUCH_TARGET,
  refuseNamingHidden,
  screenEventForAgent,
  screenReplyForAgent,
} from './hidden-targets.ts';
import { TargetRegistry } from './targets.ts';

function hidden(): HiddenTargets {
  const set = new HiddenTargets();
  set.targets.add('SPARE');
  set.targets.add('TAB');
  return set;
}

const info = (targetId: string, type = 'page') => ({ targetId, type, title: '', url: 'about:blank' });

describe('refuseNamingHidden', () => {
  it('refuses a message that names a hidden target or session anywhere at the top of its params', () => {
    const set = hidden();
    set.sessions.add('S-HIDDEN');
    for (const method of ['Target.attachToTarget', 'Target.closeTarget', 'Browser.getWindowForTarget'])
      expect(refuseNamingHidden({ id: 1, method, params: { targetId: 'SPARE' } }, set)).toBe(NO_SUCH_TARGET);
    expect(
      refuseNamingHidden({ id: 1, method: 'Target.autoAttachRelated', params: { targetId: 'TAB' } }, set),
    ).toBe(NO_SUCH_TARGET);
    expect(
      refuseNamingHidden(
        { id: 1, method: 'Target.detachFromTarget', params: { sessionId: 'S-HIDDEN' } },
        set,
      ),
    ).toBe(NO_SUCH_SESSION);
    expect(refuseNamingHidden({ id: 1, method: 'Runtime.evaluate', sessionId: 'S-HIDDEN' }, set)).toBe(
      NO_SUCH_SESSION,
    );
  });

  it('lets everything else through, and everything when nothing is hidden', () => {
    expect(
      refuseNamingHidden({ id: 1, method: 'Target.attachToTarget', params: { targetId: 'MINE' } }, hidden()),
    ).toBe(undefined);
    expect(
      refuseNamingHidden(
        { id: 1, method: 'Target.attachToTarget', params: { targetId: 'SPARE' } },
        new HiddenTargets(),
      ),
    ).toBe(undefined);
  });
});

describe('screenEventForAgent', () => {
  it('drops every Target event that names a hidden target', () => {
    const set = hidden();
    for (const [method, params] of [
      ['Target.targetCreated', { targetInfo: info('SPARE') }],
      ['Target.targetInfoChanged', { targetInfo: info('TAB', 'tab') }],
      ['Target.targetDestroyed', { targetId: 'SPARE' }],
      ['Target.targetCrashed', { targetId: 'SPARE', status: 'crashed', errorCode: 1 }],
    ] as const)
      expect(screenEventForAgent({ method, params }, set), method).toEqual({ drop: true });
    const mine = { method: 'Target.targetCreated', params: { targetInfo: info('MINE') } };
    expect(screenEventForAgent(mine, set)).toEqual({ deliver: mine });
    const other = { method: 'Page.frameNavigated', params: { frame: { id: 'SPARE' } } };
    expect(screenEventForAgent(other, set)).toEqual({ deliver: other });
  });

  it('undoes an auto-attach to a hidden target where it was made, and drops what that session says', () => {
    const set = hidden();
    const attached = {
      method: 'Target.attachedToTarget',
      sessionId: 'AGENT',
      params: { sessionId: 'CHILD', targetInfo: info('TAB', 'tab'), waitingForDebugger: true },
    };
    expect(screenEventForAgent(attached, set)).toEqual({
      drop: true,
      detach: { sessionId: 'CHILD', parent: 'AGENT', waitingForDebugger: true },
    });
    expect(set.sessions.has('CHILD')).toBe(true);
    expect(
      screenEventForAgent(
        { method: 'Target.detachedFromTarget', sessionId: 'AGENT', params: { sessionId: 'CHILD' } },
        set,
      ),
    ).toEqual({ drop: true });
    expect(
      screenEventForAgent(
        { method: 'Target.receivedMessageFromTarget', params: { sessionId: 'CHILD', message: '{}' } },
        set,
      ),
    ).toEqual({ drop: true });
    const own = {
      method: 'Target.attachedToTarget',
      sessionId: 'AGENT',
      params: { sessionId: 'C2', targetInfo: info('MINE'), waitingForDebugger: false },
    };
    expect(screenEventForAgent(own, set)).toEqual({ deliver: own });
  });
});

describe('screenReplyForAgent', () => {
  it('leaves hidden targets out of a target list, and answers a hidden target info as unknown', () => {
    const set = hidden();
    const list = { id: 3, result: { targetInfos: [info('MINE'), info('SPARE'), info('TAB', 'tab')] } };
    expect(screenReplyForAgent(list, set)).toEqual({ id: 3, result: { targetInfos: [info('MINE')] } });
    expect(screenReplyForAgent({ id: 4, result: { targetInfo: info('SPARE') } }, set)).toEqual({
      id: 4,
      error: NO_SUCH_TARGET,
    });
    const plain = { id: 5, result: { targetInfo: info('MINE') } };
    expect(screenReplyForAgent(plain, set)).toBe(plain);
  });
});

describe('TargetRegistry', () => {
  const created = (targetInfo: object) => ['Target.targetCreated', { targetInfo }] as const;

  it("pairs a page with the tab created right before it, even with the tab's changes between", () => {
    const registry = new TargetRegistry();
    registry.apply(...created(info('TAB1', 'tab')));
    registry.apply('Target.targetInfoChanged', { targetInfo: { ...info('TAB1', 'tab'), attached: true } });
    registry.apply(...created(info('P1')));
    expect(registry.tabOf('P1')).toBe('TAB1');
    // Another creation between: no pairing (a guess would hide the wrong tab).
    registry.apply(...created(info('TAB2', 'tab')));
    registry.apply(...created(info('W', 'worker')));
    registry.apply(...created(info('P2')));
    expect(registry.tabOf('P2')).toBeUndefined();
  });

  it('neither lists nor finds a hidden target, and peeks at it for the runner', () => {
    const registry = new TargetRegistry(hidden());
    registry.apply(...created(info('MINE')));
    registry.apply(...created(info('SPARE')));
    expect(registry.listed().map((t) => t.targetId)).toEqual(['MINE']);
    expect(registry.get('SPARE')).toBeUndefined();
    expect(registry.peek('SPARE')?.targetId).toBe('SPARE');
  });
});
