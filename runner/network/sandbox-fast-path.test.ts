import { describe, expect, it } from 'vitest';
import type { NetworkEvent } from './events.ts';
import type { FastElement } from './fast-path.ts';
import { AnsweredNames } from './names.ts';
import type { FastMode, NftTable } from './nft-table.ts';
import { type NetworkPolicy, parseNetworkPolicy } from './policy.ts';
import { SandboxFastPath } from './sandbox-fast-path.ts';

/** Records every call; `gate` holds nft calls back so that orderings can be forced. */
function fakeTable() {
  const calls: string[] = [];
  let release: () => void = () => {};
  let gate: Promise<void> | undefined;
  const table: NftTable = {
    name: 't',
    fast: true,
    add: async (_ifname: string, _id: string, mode: FastMode, cidrs: FastElement[]) => {
      calls.push(`add ${mode} ${JSON.stringify(cidrs)}`);
    },
    setMode: async (_ifname: string, mode: FastMode) => {
      await gate;
      calls.push(`mode ${mode}`);
    },
    addAnswers: async (_ifname: string, elements: FastElement[], timeoutS: number) => {
      await gate;
      if (elements.length > 0) calls.push(`answers ${JSON.stringify(elements)} ${timeoutS}`);
    },
    remove: async () => {
      calls.push('remove');
    },
    drop: async () => {},
  };
  return {
    table,
    calls,
    hold: () => {
      gate = new Promise((resolve) => {
        release = resolve;
      });
    },
    release: () => release(),
  };
}

function setUp(initial: NetworkPolicy) {
  const fake = fakeTable();
  let policy = initial;
  const events: NetworkEvent[] = [];
  const names = new AnsweredNames();
  const path = new SandboxFastPath(
    fake.table,
    'gxh1',
    { policy: () => policy, names },
    { isHostAddress: () => false, proxiedAddresses: new Set() },
    (event) => events.push(event),
  );
  return {
    ...fake,
    path,
    events,
    names,
    setPolicy: (next: NetworkPolicy) => {
      policy = next;
      return path.policyChanged();
    },
  };
}

const allow = (...list: string[]) => parseNetworkPolicy({ mode: 'allow', allow: list });

describe('SandboxFastPath', () => {
  it('adds an answer once, not on every query within half its life', async () => {
    const t = setUp(allow('a.test'));
    await t.path.answered('a.test', ['203.0.113.7'], 60, Date.now());
    await t.path.answered('a.test', ['203.0.113.7'], 60, Date.now());
    expect(t.calls).toEqual(['answers [{"address":"203.0.113.7"}] 60']);
    // Past half its life the element is renewed behind the answer, which does not wait for it.
    await t.path.answered('a.test', ['203.0.113.7'], 60, Date.now() + 40_000);
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(t.calls).toHaveLength(2);
  });

  it('a policy change empties what it remembered, so the next answer is added again', async () => {
    const t = setUp(allow('a.test'));
    await t.path.answered('a.test', ['203.0.113.7'], 60);
    await t.setPolicy(allow('a.test', 'b.test'));
    await t.path.answered('a.test', ['203.0.113.7'], 60);
    expect(t.calls).toEqual([
      'answers [{"address":"203.0.113.7"}] 60',
      'mode allow',
      'answers [{"address":"203.0.113.7"}] 60',
    ]);
  });

  it('an answer judged before a narrowing never lands after its flush', async () => {
    const t = setUp(allow('a.test'));
    t.hold();
    const answered = t.path.answered('a.test', ['203.0.113.7'], 60);
    const narrowed = t.setPolicy(allow('b.test'));
    t.release();
    await Promise.all([answered, narrowed]);
    // Queued first it runs first, but judged when it runs, under the policy that lists b.test only.
    expect(t.calls).toEqual(['mode allow']);
  });

  it('reports a forwarded flow as allowed, under the name the resolver answered, via the kernel', () => {
    const t = setUp(allow('a.test'));
    t.names.record('a.test', '203.0.113.7', 60);
    t.path.flowEnded({ address: '203.0.113.7', port: 443, bytesUp: 600, bytesDown: 9000, durationMs: 12 });
    expect(t.events).toEqual([
      {
        type: 'network',
        kind: 'tcp',
        host: 'a.test',
        port: 443,
        address: '203.0.113.7',
        decision: 'allowed',
        rule: 'allow a.test',
        via: 'kernel',
        bytesUp: 600,
        bytesDown: 9000,
        durationMs: 12,
      },
    ]);
  });

  it("says when a forwarded flow's byte counts were lost", () => {
    const t = setUp(allow('a.test'));
    t.path.flowEnded({
      address: '203.0.113.7',
      port: 443,
      bytesUp: 0,
      bytesDown: 0,
      durationMs: 5,
      countersLost: true,
    });
    expect(t.events[0]).toMatchObject({
      bytesUp: 0,
      bytesDown: 0,
      reason: expect.stringContaining('unknown'),
    });
  });

  it('a policy change that the table refuses leaves the fast path off, not the old sets open', async () => {
    const t = setUp(allow('a.test'));
    let refusals = 1;
    const setMode = t.table.setMode;
    t.table.setMode = async (ifname, mode, cidrs) => {
      if (refusals-- > 0) throw new Error('nft: refused');
      return setMode(ifname, mode, cidrs);
    };
    await expect(t.setPolicy(allow('b.test'))).rejects.toThrow('refused');
    expect(t.calls).toEqual(['mode off']);
  });
});
