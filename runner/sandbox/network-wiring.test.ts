import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import type { NetworkManager, NetworkPolicy, PreparedNetwork, SandboxNetwork } from '../network/index.ts';
import { UnwiredNetwork } from '../network/index.ts';
import { NetworkWiring } from './network-wiring.ts';

/** Records what the wiring asks of the host, without touching it. */
class FakeManager implements NetworkManager {
  readonly calls: string[] = [];
  readonly networks: { policy: NetworkPolicy; closed: boolean }[] = [];

  async prepare(options: { policy: NetworkPolicy }): Promise<PreparedNetwork> {
    this.calls.push(`prepare ${options.policy.mode}`);
    if (options.policy.mode === 'none') {
      return { attach: async () => new UnwiredNetwork(options.policy), close: async () => {} };
    }
    const record: { policy: NetworkPolicy; closed: boolean } = { policy: options.policy, closed: false };
    this.networks.push(record);
    const network: SandboxNetwork = {
      get policy() {
        return record.policy;
      },
      setPolicy: (policy) => {
        record.policy = policy;
      },
      close: async () => {
        record.closed = true;
      },
    };
    return {
      attach: async (pid) => {
        this.calls.push(`attach ${pid}`);
        return network;
      },
      close: network.close,
    };
  }

  async reapLeftovers(): Promise<string[]> {
    return [];
  }

  async close(): Promise<void> {}
}

const pid = async () => 4242;
const logger = pino({ level: 'silent' });
const makeWiring = (manager: NetworkManager | undefined, policy: NetworkPolicy, implicit = false) =>
  new NetworkWiring({ manager, sandboxId: 'sbx_1', policy, implicit, logger, onEvent: () => {} });

class UnavailableManager extends FakeManager {
  override async prepare(): Promise<PreparedNetwork> {
    throw new GrexalError('E_NETWORK_UNAVAILABLE', 'not root');
  }
}

describe('a sandbox network wiring', () => {
  it('prepares, attaches after the start, and closes', async () => {
    const manager = new FakeManager();
    const wiring = makeWiring(manager, { mode: 'public' });
    await wiring.prepare();
    await wiring.wireAfter(Promise.resolve(), pid);
    expect(manager.calls).toEqual(['prepare public', 'attach 4242']);
    await wiring.close();
    expect(manager.networks[0]?.closed).toBe(true);
  });

  it('keeps a PATCH that comes while the sandbox starts', async () => {
    const manager = new FakeManager();
    const wiring = makeWiring(manager, { mode: 'public' });
    await wiring.prepare();
    await wiring.setPolicy({ mode: 'allow', allow: ['a.test'] });
    await wiring.wireAfter(Promise.resolve(), pid);
    expect(manager.networks[0]?.policy).toMatchObject({ mode: 'allow' });
    expect(wiring.policy).toMatchObject({ mode: 'allow' });
  });

  it('wires a sandbox that started with none when a PATCH opens it, and refuses a bad policy', async () => {
    const manager = new FakeManager();
    const wiring = makeWiring(manager, { mode: 'none' });
    await wiring.prepare();
    await wiring.wireAfter(Promise.resolve(), pid);
    expect(manager.networks).toHaveLength(0);
    await expect(wiring.setPolicy({ mode: 'allow', allow: ['10.0.0.0/8'] }, pid)).rejects.toThrow(
      /always denied/,
    );
    expect(wiring.policy).toEqual({ mode: 'none' });
    await wiring.setPolicy('public', pid);
    expect(manager.calls).toEqual(['prepare none', 'prepare public', 'attach 4242']);
    expect(manager.networks[0]?.policy).toEqual({ mode: 'public' });
  });

  it('runs a default-policy sandbox with none on a host that cannot wire; an asked-for policy fails', async () => {
    const implicit = makeWiring(new UnavailableManager(), { mode: 'public' }, true);
    await implicit.prepare();
    expect(implicit.policy).toEqual({ mode: 'none' });
    const explicit = makeWiring(new UnavailableManager(), { mode: 'public' }, false);
    await expect(explicit.prepare()).rejects.toMatchObject({ code: 'E_NETWORK_UNAVAILABLE' });
  });

  it('fails the bootstrap wait when the start or the move fails', async () => {
    const wiring = makeWiring(new FakeManager(), { mode: 'public' });
    await wiring.prepare();
    const wired = wiring.wireAfter(Promise.reject(new Error('start failed')), pid);
    await expect(wired).rejects.toThrow('start failed');
    await expect(wiring.ready).rejects.toThrow('start failed');
  });

  it('a PATCH answers only once the host follows it (the fast path emptied), and fails when it cannot', async () => {
    let release: () => void = () => {};
    let fail = false;
    const steps: string[] = [];
    const manager = new FakeManager();
    const prepare = manager.prepare.bind(manager);
    manager.prepare = async (options) => {
      const prepared = await prepare(options);
      return {
        ...prepared,
        attach: async (p) => {
          const network = await prepared.attach(p);
          return {
            get policy() {
              return network.policy;
            },
            setPolicy: (policy) => {
              network.setPolicy(policy);
              return new Promise<void>((resolve, reject) => {
                release = () => {
                  steps.push('host followed');
                  if (fail) reject(new GrexalError('E_NETWORK_SETUP_FAILED', 'nft failed'));
                  else resolve();
                };
              });
            },
            close: network.close,
          };
        },
      };
    };
    const wiring = makeWiring(manager, { mode: 'public' });
    await wiring.prepare();
    await wiring.wireAfter(Promise.resolve(), pid);
    const patched = wiring.setPolicy({ mode: 'allow', allow: ['a.test'] }).then(() => steps.push('answered'));
    await new Promise((resolve) => setTimeout(resolve, 10));
    expect(steps).toEqual([]);
    release();
    await patched;
    expect(steps).toEqual(['host followed', 'answered']);
    fail = true;
    const failing = wiring.setPolicy('public');
    await new Promise((resolve) => setTimeout(resolve, 10));
    release();
    await expect(failing).rejects.toMatchObject({ code: 'E_NETWORK_SETUP_FAILED' });
  });
});
