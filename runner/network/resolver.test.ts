import { createSocket } from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { buildQuery, parseResponse, RCODE, TYPE_AAAA } from './dns-wire.ts';
import type { NetworkEvent } from './events.ts';
import { AnsweredNames } from './names.ts';
import { type NetworkPolicy, parseNetworkPolicy } from './policy.ts';
import { isReservedName, type SandboxResolver, startResolver } from './resolver.ts';

let resolver: SandboxResolver | undefined;
afterEach(async () => {
  await resolver?.close();
  resolver = undefined;
});

/** A resolver on loopback with the test-only override: no query ever goes upstream. */
async function setUp(policy: NetworkPolicy, onAnswer?: () => Promise<void>) {
  const names = new AnsweredNames();
  const events: NetworkEvent[] = [];
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  resolver = await startResolver({
    address: '127.0.0.1',
    port,
    policy: () => policy,
    names,
    onEvent: (event) => events.push(event),
    onAnswer,
    override: { 'api.test': { address: '198.51.100.10' }, 'x.cdn.test': { address: '198.51.100.11' } },
  });
  const ask = (name: string, type?: number) =>
    new Promise<ReturnType<typeof parseResponse>>((resolve) => {
      const socket = createSocket('udp4');
      socket.once('message', (packet) => {
        socket.close();
        resolve(parseResponse(packet));
      });
      socket.send(buildQuery(7, name, type), port, '127.0.0.1');
    });
  const send = (name: string) => {
    const socket = createSocket('udp4');
    socket.send(buildQuery(7, name), port, '127.0.0.1', () => socket.close());
  };
  return { names, events, ask, send };
}

describe('the sandbox resolver', () => {
  it('answers listed names only in allow mode, and records what it answered', async () => {
    const { names, events, ask } = await setUp(
      parseNetworkPolicy({ mode: 'allow', allow: ['api.test', '*.cdn.test'] }),
    );
    expect(await ask('api.test')).toEqual({ id: 7, rcode: RCODE.NOERROR, addresses: ['198.51.100.10'] });
    expect(await ask('X.CDN.test')).toMatchObject({ rcode: RCODE.NOERROR, addresses: ['198.51.100.11'] });
    expect(await ask('api.test', TYPE_AAAA)).toMatchObject({ rcode: RCODE.NOERROR, addresses: [] });
    expect(await ask('secret-data.attacker.test')).toMatchObject({ rcode: RCODE.REFUSED, addresses: [] });
    expect(names.namesFor('198.51.100.10')).toEqual(['api.test']);
    expect(events).toEqual([
      expect.objectContaining({
        kind: 'dns',
        host: 'secret-data.attacker.test',
        decision: 'denied',
        rule: 'not-listed',
      }),
    ]);
  });

  it('never sends reserved names upstream: unknown .test names are NXDOMAIN', async () => {
    const { ask } = await setUp(parseNetworkPolicy('public'));
    expect(await ask('unknown.test')).toMatchObject({ rcode: RCODE.NXDOMAIN });
    expect(await ask('router.local')).toMatchObject({ rcode: RCODE.NXDOMAIN });
    for (const name of [
      'a.test',
      'b.invalid',
      'localhost',
      'x.localhost',
      'intranet',
      'metadata.google.internal',
      '1.0.0.127.in-addr.arpa',
    ]) {
      expect(isReservedName(name), name).toBe(true);
    }
    expect(isReservedName('api.example.com')).toBe(false);
  });

  it('refuses everything under none', async () => {
    const { ask } = await setUp(parseNetworkPolicy('none'));
    expect(await ask('api.test')).toMatchObject({ rcode: RCODE.REFUSED });
  });

  it('drops an answer that comes after it was closed, without throwing', async () => {
    let hookCalled!: () => void;
    const called = new Promise<void>((resolve) => {
      hookCalled = resolve;
    });
    let finishHook!: () => void;
    const hook = () =>
      new Promise<void>((resolve) => {
        finishHook = resolve;
        hookCalled();
      });
    const { send } = await setUp(parseNetworkPolicy('public'), hook);
    const thrown: unknown[] = [];
    const onRejection = (error: unknown) => thrown.push(error);
    process.on('unhandledRejection', onRejection);
    try {
      send('api.test');
      await called;
      await resolver?.close();
      resolver = undefined;
      finishHook();
      await new Promise((resolve) => setTimeout(resolve, 50));
    } finally {
      process.off('unhandledRejection', onRejection);
    }
    expect(thrown).toEqual([]);
  });
});
