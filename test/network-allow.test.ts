/**
 * The `allow` egress policy against the real engine (issue 10): listed names reached from Python,
 * Node and the desktop's Chromium, the rest refused with the reason and audited without paths; a
 * PATCH for the next connection; the test-only DNS override refused by `grexal serve` unless
 * enabled. Setup: test/network-fixture.ts.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { eventually, runCli, sandboxDirs } from './helpers.ts';
import {
  API_ADDRESS,
  httpPort,
  OTHER_ADDRESS,
  outcome,
  PY_TRY,
  paths,
  python,
  REBIND_ADDRESS,
  runIn,
  startIn,
  stateDir,
  useNetworkFixture,
} from './network-fixture.ts';

useNetworkFixture();

const ALLOW_API = { mode: 'allow', allow: ['api.test', 'rebind.test'] };

describe('allow', () => {
  it.each([{ runtime: undefined }, { runtime: 'runsc' }])(
    'under $runtime: reaches a listed name from Python urllib and Node fetch; refuses the rest with the reason',
    async ({ runtime }) => {
      const ran = await runIn(
        ALLOW_API,
        python(`${PY_TRY}
url('urllib', 'http://api.test:${httpPort}/secret-path?token=query-value')
try:
    socket.getaddrinfo('other.test', 80); print('other-dns ok', flush=True)
except socket.gaierror as e: print('other-dns fail', e.errno, flush=True)
tcp('other-raw', '${OTHER_ADDRESS}', ${httpPort})
tcp('rebind', 'rebind.test', ${httpPort})
import subprocess
print(subprocess.run(['node', '-e', """
fetch('http://api.test:${httpPort}/from-node').then(r => r.text()).then(t => console.log('fetch ok', t.trim()), e => console.log('fetch fail', e.cause?.code));
"""], capture_output=True, text=True).stdout, end='', flush=True)
`),
        { runtime },
      );
      expect(ran.stdout).toContain('urllib ok hello from the test listener');
      expect(ran.stdout).toContain('fetch ok hello from the test listener');
      // EAI_AGAIN (-3) is what glibc makes of REFUSED: an answer, not a timeout.
      expect(ran.stdout).toMatch(/other-dns fail -3\n/);
      expect(outcome(ran.stdout, 'other-raw')).toBe('fail');
      expect(outcome(ran.stdout, 'rebind')).toBe('fail');
      expect(ran.stdout).not.toContain('timeout');

      const allowed = ran.network.filter((e) => e.decision === 'allowed');
      expect(allowed).toHaveLength(2);
      for (const event of allowed) {
        expect(event).toMatchObject({
          kind: 'tcp',
          host: 'api.test',
          port: httpPort,
          address: API_ADDRESS,
          rule: 'allow api.test',
        });
        expect(event.bytesUp).toBeGreaterThan(0);
        expect(event.bytesDown).toBeGreaterThan(0);
      }
      expect(ran.network).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            kind: 'dns',
            host: 'other.test',
            decision: 'denied',
            rule: 'not-listed',
          }),
          expect.objectContaining({
            kind: 'tcp',
            address: OTHER_ADDRESS,
            decision: 'denied',
            rule: 'not-listed',
          }),
          expect.objectContaining({
            kind: 'tcp',
            host: 'rebind.test',
            address: REBIND_ADDRESS,
            decision: 'denied',
            rule: 'denied-range 10.0.0.0/8',
          }),
        ]),
      );
      // The listener saw the path; the audit trail never does.
      expect(paths).toContain('/secret-path?token=query-value');
      expect(JSON.stringify(ran.events)).not.toMatch(/secret-path|query-value|from-node/);
    },
  );

  it("reaches a listed name from the desktop's Chromium, and not an unlisted one", async () => {
    const dump = (name: string) =>
      `chromium --headless=new --no-sandbox --disable-gpu --user-data-dir=/tmp/chromium-${name} --dump-dom http://${name}:${httpPort}/from-chromium 2>/dev/null | tr -d '\\n' | head -c 300; echo " <- ${name}"`;
    const ran = await (
      await startIn(ALLOW_API, ['sh', '-c', `${dump('api.test')}; ${dump('other.test')}`], { desktop: true })
    ).done;
    expect(ran.stdout).toMatch(/hello from the test listener[^\n]*<- api\.test/);
    expect(ran.stdout).not.toMatch(/hello from the test listener[^\n]*<- other\.test/);
    expect(ran.network).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'tcp', host: 'api.test', decision: 'allowed' }),
        expect.objectContaining({ kind: 'dns', host: 'other.test', decision: 'denied' }),
      ]),
    );
    expect(JSON.stringify(ran.network)).not.toContain('from-chromium');
  });

  it("hears nothing from the desktop's own Chromium: no name is asked for that the agent did not ask for", async () => {
    // Chromium on its own looked up clients2.google.com, update.googleapis.com and
    // accounts.google.com within a second of its start (chromium-quiet.ts). Under `allow` each would
    // be a refused query in this sandbox's events, and under `public` a query sent upstream.
    const ran = await (await startIn(ALLOW_API, ['sh', '-c', 'sleep 5'], { desktop: true })).done;
    expect(ran.network).toEqual([]);
  });

  it('a PATCH takes effect for the next connection', async () => {
    const script = `${PY_TRY}
import os, time
url('first', 'http://api.test:${httpPort}/')
while not os.path.exists('/run/grexal/go'): time.sleep(0.05)
url('second', 'http://api.test:${httpPort}/')
`;
    const started = await startIn(ALLOW_API, python(script));
    await eventually(async () => started.stdout().includes('first '), 'the first attempt');
    await started.sandbox.setNetworkPolicy({ mode: 'allow', allow: ['other.test'] });
    const [dir] = (await sandboxDirs(stateDir)).filter((d) => d.endsWith(started.sandbox.id));
    await writeFile(join(dir ?? '', 'go'), '');
    const ran = await started.done;
    expect(outcome(ran.stdout, 'first')).toBe('ok');
    expect(outcome(ran.stdout, 'second')).toBe('fail');
    // glibc asks again after a REFUSED: one allowed connection, then only refused queries.
    expect([...new Set(ran.network.map((e) => `${e.kind} ${e.decision}`))]).toEqual([
      'tcp allowed',
      'dns denied',
    ]);
  });
});

describe('the test-only DNS override', () => {
  it('is refused by grexal serve unless explicitly enabled', async () => {
    const { code, stderr } = await runCli(['serve', '--port', '0'], {
      GREXAL_STATE_DIR: stateDir,
      GREXAL_DANGEROUSLY_OVERRIDE_DNS: JSON.stringify({ 'api.test': { address: API_ADDRESS } }),
    });
    expect(code).toBe(1);
    expect(stderr).toContain('--dangerously-enable-dns-override');
  });
});
