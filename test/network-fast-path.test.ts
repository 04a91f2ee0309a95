/**
 * The network fast path against the real engine (issue 10): allowed flows carried by the kernel
 * (its own counters, sets and connection table read back) with their audit events, narrowed by a
 * PATCH; CIDR rules; `public` under runc and gVisor. Setup: test/network-fixture.ts.
 */
import { describe, expect, it } from 'vitest';
import { eventually } from './helpers.ts';
import {
  API_ADDRESS,
  conntrackOf,
  far,
  fastPackets,
  goFile,
  httpPort,
  linkOf,
  outcome,
  PY_FAR,
  python,
  runIn,
  setElements,
  startIn,
  useNetworkFixture,
} from './network-fixture.ts';

useNetworkFixture();

describe('fast path', () => {
  it('the kernel carries an allowed flow, the proxy never sees it, and its audit event has the bytes; a PATCH narrowing cuts the next one', async () => {
    const seen = far.lines.length;
    const started = await startIn(
      { mode: 'allow', allow: ['far.test', 'api.test'] },
      python(`${PY_FAR(far.port)}
far('first', 'far.test')
url('proxied', 'http://api.test:${httpPort}/')
wait_go()
far('second', '${far.address}')  # the address it resolved before: a client that caches DNS
`),
    );
    await eventually(async () => started.stdout().includes('proxied '), 'the first attempts');
    const { hostIf, sandboxAddress } = await linkOf(started.sandbox);
    expect(await fastPackets(hostIf)).toBeGreaterThan(0);
    expect(await setElements(hostIf, 'any')).toContain(far.address);
    // The override's redirected address is never in a set: only the proxy can dial it elsewhere.
    expect(await setElements(hostIf, 'any')).not.toContain(API_ADDRESS);

    await started.sandbox.setNetworkPolicy({ mode: 'allow', allow: ['api.test'] });
    expect(await setElements(hostIf, 'any')).toBe('[]');
    const packetsBefore = await fastPackets(hostIf);
    await goFile(started.sandbox);
    const ran = await started.done;
    expect(ran.stdout).toMatch(/^first ok far-hello /m);
    expect(outcome(ran.stdout, 'proxied')).toBe('ok');
    expect(outcome(ran.stdout, 'second')).toBe('fail');
    expect(packetsBefore).toBeGreaterThan(0);

    await eventually(async () => ran.network.some((e) => e.via === 'kernel'), 'the kernel flow reported');
    const tcp = ran.network.filter((e) => e.kind === 'tcp');
    const kernel = tcp.filter((e) => e.via === 'kernel');
    expect(kernel).toHaveLength(1);
    expect(kernel[0]).toMatchObject({
      host: 'far.test',
      address: far.address,
      port: far.port,
      decision: 'allowed',
      rule: 'allow far.test',
    });
    // IP bytes, headers included: at least what was sent each way.
    expect(kernel[0]?.bytesUp).toBeGreaterThanOrEqual(400);
    expect(kernel[0]?.bytesDown).toBeGreaterThanOrEqual(65_536 + 10);
    expect(tcp.filter((e) => e.via === 'proxy')).toEqual([
      expect.objectContaining({ host: 'api.test', address: API_ADDRESS, decision: 'allowed' }),
    ]);
    // After the narrowing, the address the sandbox still knew went to the proxy, which refused it.
    expect(tcp).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ address: far.address, decision: 'denied', rule: 'not-listed' }),
      ]),
    );
    // The listener saw exactly the one forwarded connection, with all 400 bytes.
    await eventually(async () => far.lines.length > seen, 'the listener closed the connection');
    expect(far.lines.slice(seen)).toEqual(['conn 400']);
    // Nothing of the sandbox is left in the kernel's connection table.
    expect(conntrackOf(sandboxAddress)).toEqual([]);
  });

  it('a CIDR rule is in the kernel from the start: no name, no proxy', async () => {
    const ran = await runIn(
      { mode: 'allow', allow: [`${far.address}/32:${far.port}`] },
      python(`${PY_FAR(far.port)}
far('cidr', '${far.address}')
tcp('other-port', '${far.address}', ${far.port + 1})
`),
    );
    expect(ran.stdout).toMatch(/^cidr ok far-hello /m);
    expect(outcome(ran.stdout, 'other-port')).toBe('fail');
    await eventually(async () => ran.network.some((e) => e.via === 'kernel'), 'the kernel flow reported');
    expect(
      ran.network.filter((e) => e.kind === 'tcp').map((e) => `${e.port} ${e.decision} ${e.rule} ${e.via}`),
    ).toEqual(
      expect.arrayContaining([
        `${far.port} allowed allow ${far.address}/32:${far.port} kernel`,
        `${far.port + 1} denied not-listed undefined`,
      ]),
    );
  });

  it.each([{ runtime: undefined }, { runtime: 'runsc' }])(
    'under $runtime: public forwards any public address in the kernel; test-redirected addresses still go to the proxy',
    async ({ runtime }) => {
      const ran = await runIn(
        'public',
        python(`${PY_FAR(far.port)}
far('raw', '${far.address}')
url('proxied', 'http://api.test:${httpPort}/')
`),
        { runtime },
      );
      expect(ran.stdout).toMatch(/^raw ok far-hello /m);
      expect(outcome(ran.stdout, 'proxied')).toBe('ok');
      await eventually(async () => ran.network.some((e) => e.via === 'kernel'), 'the kernel flow reported');
      expect(
        ran.network.filter((e) => e.kind === 'tcp').map((e) => `${e.address} ${e.rule} ${e.via}`),
      ).toEqual(expect.arrayContaining([`${far.address} public kernel`, `${API_ADDRESS} public proxy`]));
    },
  );
});
