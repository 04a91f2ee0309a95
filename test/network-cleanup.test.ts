/**
 * What the network leaves on the host, against the real engine (issue 10): labelled rules and
 * links removed with their sandbox, the rules read back (nothing open but the proxy, DNS and
 * marked flows), and a SIGKILLed runner's table and links reaped. Setup: test/network-fixture.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { Runner } from '../runner/index.ts';
import { listLinks, listRunnerTables } from '../runner/network/index.ts';
import { eventually, startCli } from './helpers.ts';
import {
  API_ADDRESS,
  goFile,
  links,
  ownTable,
  ruleset,
  runner,
  startIn,
  stateDir,
  useNetworkFixture,
} from './network-fixture.ts';

useNetworkFixture();

describe('cleanup', () => {
  it('labels what it creates and removes it when the sandbox ends', async () => {
    const started = await startIn('public', [
      'sh',
      '-c',
      'while [ ! -e /run/grexal/go ]; do sleep 0.05; done',
    ]);
    const id = started.sandbox.id;
    expect(ruleset()).toContain(`comment "sandbox=${id}"`);
    expect(ruleset()).toContain(`table inet ${await ownTable()}`);
    expect(links()).toContain(`alias grexal sandbox=${id} runner=${runner.runtime.instanceId}`);
    const mine = (await listLinks()).filter((l) => l.sandboxId === id);
    // The slot's lock (a veth pair of its own, holding the host's address) and the host end, both labelled.
    expect(mine.map((l) => l.kind).sort()).toEqual(['lock', 'veth']);
    const hostIf = mine.find((l) => l.kind === 'veth')?.hostIf ?? '';
    // The fast path needs the kernel to forward from the host end; IPv6 stays off.
    expect(readFileSync(`/proc/sys/net/ipv4/conf/${hostIf}/forwarding`, 'utf8').trim()).toBe('1');
    expect(readFileSync(`/proc/sys/net/ipv6/conf/${hostIf}/disable_ipv6`, 'utf8').trim()).toBe('1');
    const objects = [
      `sb_${hostIf}`,
      `fast_${hostIf}`,
      `any_${hostIf}`,
      `cidrport_${hostIf}`,
      `"${hostIf}" : jump`,
    ];
    for (const name of objects) expect(ruleset()).toContain(name);
    await goFile(started.sandbox);
    await started.done;
    expect(ruleset()).not.toContain(id);
    for (const name of objects) expect(ruleset()).not.toContain(name);
    expect(links()).not.toContain(id);
  });

  it('the rules read back: only marked flows are forwarded, never to a denied range; IPv6 is dropped; only the proxy and DNS are open', async () => {
    const table = execFileSync('nft', ['list', 'table', 'inet', await ownTable()], {
      encoding: 'utf8',
    });
    expect(table).toMatch(
      /hook forward[^}]*ct mark 0x67780001 ct state established,related accept\s+iifname @sandboxes ip daddr @denied4 reject with icmpx admin-prohibited\s+iifname @sandboxes oifname != @sandboxes ct mark 0x67780001 accept\s+iifname @sandboxes meta l4proto tcp reject with tcp reset\s+iifname @sandboxes reject/,
    );
    // The metadata endpoint's range is among those no set can open.
    expect(/set denied4 \{[^}]*\}/.exec(table)?.[0]).toContain('169.254.0.0/16');
    expect(table).toMatch(
      /hook prerouting[^}]*meta l4proto tcp ip daddr != @denied4 ip daddr != 10.231.0.0\/16 ip daddr != @proxied4 fib daddr type != local iifname vmap @fastpaths/,
    );
    // The override's redirected addresses are proxied, never forwarded.
    expect(/set proxied4 \{[^}]*\}/.exec(table)?.[0]).toContain(API_ADDRESS);
    expect(table).toMatch(
      /hook prerouting[^}]*iifname @sandboxes meta nfproto ipv4 meta l4proto tcp redirect to :15001/,
    );
    expect(table).toMatch(
      /hook input[^}]*tcp dport 15001 ct status dnat accept\s+iifname @sandboxes meta nfproto ipv4 udp dport 53 accept\s+iifname @sandboxes meta l4proto tcp reject with tcp reset\s+iifname @sandboxes reject/,
    );
    // No accept rule but the proxy's, the resolver's and the two for marked flows.
    expect(table.match(/accept$/gm)?.length).toBe(4);
    // The one rule outside the table: forwarded marked flows past Docker's FORWARD policy.
    expect(execFileSync('iptables', ['-S', 'DOCKER-USER'], { encoding: 'utf8' })).toContain(
      `-m connmark --mark 0x67780001 -m comment --comment "grexal ${await ownTable()}" -j ACCEPT`,
    );
  });

  it("reaps a SIGKILLed runner's table and links on the next start", async () => {
    const cli = startCli(['run', '--', 'sleep', '60'], { GREXAL_STATE_DIR: stateDir });
    const prefix = `${hostname()}/${cli.child.pid}-`;
    await eventually(
      async () => (await listLinks()).some((l) => l.instanceId?.startsWith(prefix)),
      'the CLI wired its sandbox',
      400,
    );
    cli.child.kill('SIGKILL');
    await cli.exited;
    expect((await listRunnerTables(hostname())).some((t) => t.instanceId?.startsWith(prefix))).toBe(true);
    const next = await Runner.start({ stateDir });
    try {
      await next.reaped;
      expect((await listRunnerTables(hostname())).filter((t) => t.instanceId?.startsWith(prefix))).toEqual(
        [],
      );
      expect((await listLinks()).filter((l) => l.instanceId?.startsWith(prefix))).toEqual([]);
      expect(ruleset()).not.toContain(`grexal_${cli.child.pid}_`);
      expect(execFileSync('iptables', ['-S', 'DOCKER-USER'], { encoding: 'utf8' })).not.toContain(
        `grexal_${cli.child.pid}_`,
      );
    } finally {
      await next.close();
    }
  });
});
