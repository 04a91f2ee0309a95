import { describe, expect, it } from 'vitest';
import { deniedRanges } from './denied.ts';
import { parseForwardAccepts } from './forward-accept.ts';
import { addScript, answerScript, chainScript, FAST_MARK, removeScript, tableScript } from './nft-table.ts';

const TABLE = 'grexal_1_2_0';

describe('the runner table', () => {
  const script = tableScript(TABLE, 'host/1-2', { proxied: ['198.51.100.10'] });

  it('lists every always-denied IPv4 range, the metadata endpoint among them', () => {
    const denied = /set denied4 \{[^}]*elements = \{ ([^}]*) \}/.exec(script)?.[1]?.split(', ');
    const expected = deniedRanges()
      .filter((d) => d.range.family === 4)
      .map((d) => d.range.text);
    expect(denied).toEqual(expected);
    expect(denied).toContain('169.254.0.0/16');
  });

  it('takes the fast path only for public, non-local, non-redirected IPv4 TCP; the rest goes to the proxy', () => {
    const prerouting = /chain nat_prerouting \{([^}]*)\}/.exec(script)?.[1] ?? '';
    const lines = prerouting
      .trim()
      .split('\n')
      .map((l) => l.trim());
    expect(lines[1]).toBe(
      'iifname @sandboxes meta nfproto ipv4 meta l4proto tcp ip daddr != @denied4 ip daddr != 10.231.0.0/16 ip daddr != @proxied4 fib daddr type != local iifname vmap @fastpaths',
    );
    expect(lines[2]).toBe('iifname @sandboxes meta nfproto ipv4 meta l4proto tcp redirect to :15001');
    expect(script).toMatch(/set proxied4 \{[^}]*elements = \{ 198\.51\.100\.10 \}/);
  });

  it('forwards only marked flows, never to a denied range, and nothing else from or to a sandbox', () => {
    const forward = /chain filter_forward \{([^}]*)\}/.exec(script)?.[1] ?? '';
    const lines = forward
      .trim()
      .split('\n')
      .map((l) => l.trim());
    const mark = `0x${FAST_MARK.toString(16)}`;
    expect(lines.slice(1)).toEqual([
      `ct mark ${mark} ct state established,related accept`,
      'iifname @sandboxes ip daddr @denied4 reject with icmpx admin-prohibited',
      `iifname @sandboxes oifname != @sandboxes ct mark ${mark} accept`,
      'iifname @sandboxes meta l4proto tcp reject with tcp reset',
      'iifname @sandboxes reject with icmpx admin-prohibited',
      'oifname @sandboxes drop',
    ]);
    expect(script).toContain(`ct mark ${mark} masquerade`);
  });

  it('never forwards to the link range, even one configured outside the denied ranges', () => {
    const custom = tableScript(TABLE, 'host/1-2', { linkRange: '203.0.113.0/24' });
    expect(custom).toContain('ip daddr != 203.0.113.0/24 ip daddr != @proxied4');
  });
});

describe("a sandbox's chain", () => {
  it('public accepts (and marks) whatever reached it; allow only its sets; off nothing', () => {
    const mark = `ct mark set 0x${FAST_MARK.toString(16)} accept`;
    expect(chainScript(TABLE, 'gxh7', 'public', [])).toContain(
      `add rule inet ${TABLE} sb_gxh7 counter name fast_gxh7 ${mark}`,
    );
    const allow = chainScript(TABLE, 'gxh7', 'allow', [
      { address: '203.0.113.0/24' },
      { address: '192.0.2.0/24', port: 443 },
    ]);
    expect(allow.match(/^add rule .*$/gm)).toEqual([
      `add rule inet ${TABLE} sb_gxh7 ip daddr @any_gxh7 counter name fast_gxh7 ${mark}`,
      `add rule inet ${TABLE} sb_gxh7 ip daddr . tcp dport @port_gxh7 counter name fast_gxh7 ${mark}`,
      `add rule inet ${TABLE} sb_gxh7 ip daddr @cidr_gxh7 counter name fast_gxh7 ${mark}`,
      `add rule inet ${TABLE} sb_gxh7 ip daddr . tcp dport @cidrport_gxh7 counter name fast_gxh7 ${mark}`,
    ]);
    expect(allow).toContain(`add element inet ${TABLE} cidr_gxh7 { 203.0.113.0/24 }`);
    expect(allow).toContain(`add element inet ${TABLE} cidrport_gxh7 { 192.0.2.0/24 . 443 }`);
    const off = chainScript(TABLE, 'gxh7', 'off', []);
    expect(off).not.toContain('add rule');
  });

  it('every change starts by emptying the chain and all four sets', () => {
    for (const mode of ['public', 'allow', 'off'] as const) {
      const lines = chainScript(TABLE, 'gxh7', mode, []).split('\n');
      expect(lines.slice(0, 5)).toEqual([
        `flush chain inet ${TABLE} sb_gxh7`,
        `flush set inet ${TABLE} any_gxh7`,
        `flush set inet ${TABLE} port_gxh7`,
        `flush set inet ${TABLE} cidr_gxh7`,
        `flush set inet ${TABLE} cidrport_gxh7`,
      ]);
    }
  });

  it('an answer renews its element: add, delete, add with the timeout', () => {
    expect(
      answerScript(TABLE, 'gxh7', [{ address: '203.0.113.7', port: 443 }], 60)
        .trim()
        .split('\n'),
    ).toEqual([
      `add element inet ${TABLE} port_gxh7 { 203.0.113.7 . 443 timeout 60s }`,
      `delete element inet ${TABLE} port_gxh7 { 203.0.113.7 . 443 }`,
      `add element inet ${TABLE} port_gxh7 { 203.0.113.7 . 443 timeout 60s }`,
    ]);
  });

  it('is added and removed whole', () => {
    const added = addScript(TABLE, 'gxh7', 'sb-1', true);
    const removed = removeScript(TABLE, 'gxh7', true);
    for (const name of ['sb_gxh7', 'fast_gxh7', 'any_gxh7', 'port_gxh7', 'cidr_gxh7', 'cidrport_gxh7']) {
      expect(added).toContain(name);
      expect(removed).toContain(name);
    }
    expect(removed).toContain(`delete element inet ${TABLE} fastpaths { "gxh7" }`);
    expect(addScript(TABLE, 'gxh7', 'sb-1', false).trim().split('\n')).toHaveLength(1);
  });
});

describe('parseForwardAccepts', () => {
  it('finds the runner rules of a chain and nothing else', () => {
    const listing = [
      '-N DOCKER-USER',
      '-A DOCKER-USER -m connmark --mark 0x67780001 -m comment --comment "grexal grexal_12_34_0" -j ACCEPT',
      '-A DOCKER-USER -m connmark --mark 0x67780001 -m comment --comment "someone else" -j ACCEPT',
      '-A DOCKER-USER -j RETURN',
    ].join('\n');
    expect(parseForwardAccepts('DOCKER-USER', listing)).toEqual([
      {
        chain: 'DOCKER-USER',
        table: 'grexal_12_34_0',
        args: [
          '-m',
          'connmark',
          '--mark',
          '0x67780001',
          '-m',
          'comment',
          '--comment',
          'grexal grexal_12_34_0',
          '-j',
          'ACCEPT',
        ],
      },
    ]);
    expect(parseForwardAccepts('FORWARD', listing)).toEqual([]);
  });
});
