/**
 * Network isolation against the real engine (issue 10): sandboxes reach neither each other nor
 * the host's services, `none` is loopback only, under runc and gVisor; `grexal run --network none`
 * and a bad `--allow`. Setup: test/network-fixture.ts.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually, runCli, sandboxDirs } from './helpers.ts';
import {
  API_ADDRESS,
  hostAccepted,
  hostListenerPort,
  httpPort,
  outcome,
  PY_TRY,
  python,
  runIn,
  startIn,
  stateDir,
  useNetworkFixture,
} from './network-fixture.ts';

useNetworkFixture();

describe.each([{ runtime: undefined }, { runtime: 'runsc' }])('isolation under $runtime', ({ runtime }) => {
  it("public: B reaches neither A nor the host's services; A's own loopback works", async () => {
    const serverA = `${PY_TRY}
import threading, os
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', 8000)); srv.listen()
def serve():
    while True:
        c, _ = srv.accept(); c.sendall(b'hello-from-A'); c.close()
threading.Thread(target=serve, daemon=True).start()
print('address', own_address(), flush=True)
tcp('a-loopback', '127.0.0.1', 8000)
while not os.path.exists('/run/grexal/go'): __import__('time').sleep(0.05)
`;
    const a = await startIn('public', python(serverA), { runtime });
    let addressA = '';
    await eventually(async () => {
      addressA = /address (\S+)\n/.exec(a.stdout())?.[1] ?? '';
      return addressA !== '';
    }, 'sandbox A printed its address');
    const gateway = addressA.replace(/\d+$/, (last) => String(Number(last) - 1));
    const b = await runIn(
      'public',
      python(`${PY_TRY}
tcp('b-to-a', '${addressA}', 8000)
tcp('b-to-a-gateway', '${gateway}', ${hostListenerPort})
tcp('b-to-docker-bridge', '172.17.0.1', ${hostListenerPort})
tcp('b-to-own-gateway', own_address().rsplit('.', 1)[0] + '.' + str(int(own_address().rsplit('.', 1)[1]) - 1), ${hostListenerPort})
`),
      { runtime },
    );
    const [dirA] = (await sandboxDirs(stateDir)).filter((d) => d.endsWith(a.sandbox.id));
    await writeFile(join(dirA ?? '', 'go'), '');
    const ranA = await a.done;
    expect(outcome(ranA.stdout, 'a-loopback')).toBe('ok');
    expect(ranA.stdout).toContain('a-loopback ok hello-from-A');
    for (const label of ['b-to-a', 'b-to-a-gateway', 'b-to-docker-bridge', 'b-to-own-gateway']) {
      expect(outcome(b.stdout, label), label).toBe('fail');
    }
    expect(b.stdout).not.toContain('hello-from-A');
    expect(b.stdout).not.toContain('host-service');
    expect(hostAccepted).toBe(0);
    const denied = b.network.filter((e) => e.decision === 'denied').map((e) => e.rule);
    expect(denied).toEqual(expect.arrayContaining(['denied-range 10.0.0.0/8', 'denied-range 172.16.0.0/12']));
  });

  it('none: loopback only, no interface but lo, no DNS', async () => {
    const ran = await runIn(
      'none',
      python(`${PY_TRY}
srv = socket.socket(); srv.bind(('127.0.0.1', 8001)); srv.listen()
c = socket.create_connection(('127.0.0.1', 8001)); a, _ = srv.accept(); a.sendall(b'loop'); print('loopback', 'ok', c.recv(4).decode(), flush=True)
print('interfaces', ','.join(name for _, name in socket.if_nameindex()), flush=True)
try:
    socket.getaddrinfo('api.test', 80); print('dns ok', flush=True)
except Exception as e: print('dns fail', type(e).__name__, flush=True)
tcp('raw', '${API_ADDRESS}', ${httpPort})
`),
      { runtime },
    );
    expect(ran.stdout).toContain('loopback ok loop');
    expect(ran.stdout).toContain('interfaces lo\n');
    expect(outcome(ran.stdout, 'dns')).toBe('fail');
    expect(outcome(ran.stdout, 'raw')).toBe('fail');
    expect(ran.network).toEqual([]);
  });
});

describe('grexal run flags', () => {
  it('--network none gives loopback only; a bad --allow is refused before anything exists', async () => {
    const env = { GREXAL_STATE_DIR: stateDir };
    const none = await runCli(
      [
        'run',
        '--network',
        'none',
        '--',
        'python3',
        '-c',
        "import socket; print(','.join(n for _, n in socket.if_nameindex()))",
      ],
      env,
    );
    expect(none.stdout).toBe('lo\n');
    expect(none.code).toBe(0);
    const bad = await runCli(['run', '--allow', 'api.test', '--allow', '10.0.0.0/8', '--', 'true'], env);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('E_NETWORK_DESTINATION_DENIED');
    expect(bad.stderr).toContain('always denied');
  });
});
