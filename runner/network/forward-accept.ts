/**
 * The one rule outside the runner's own table that the fast path needs. A packet must be accepted
 * by every base chain on its hook, and Docker sets iptables' FORWARD policy to DROP, so flows the
 * runner's table forwards would die there. One ACCEPT for the fast-path conntrack mark goes into
 * DOCKER-USER (the chain Docker leaves to its users; FORWARD itself where Docker is absent and
 * the policy is DROP), commented with the runner's table so it is removed with the table, and
 * reaped with it after a crash. Written with the iptables binary, never with nft, so the rule
 * stays one iptables (and Docker) can read back.
 */
import { exec } from './exec.ts';

const COMMENT_PREFIX = 'grexal ';

function ruleArgs(mark: number, table: string): string[] {
  return [
    '-m',
    'connmark',
    '--mark',
    `0x${mark.toString(16)}`,
    '-m',
    'comment',
    '--comment',
    `${COMMENT_PREFIX}${table}`,
    '-j',
    'ACCEPT',
  ];
}

/** The chain to put the rule in, or undefined when forwarded packets are not dropped by iptables. */
async function targetChain(): Promise<string | undefined> {
  const rules = await exec('iptables', ['-w', '5', '-S', 'FORWARD']).catch(() => undefined);
  if (rules === undefined) return undefined;
  if (/^-A FORWARD -j DOCKER-USER$/m.test(rules)) return 'DOCKER-USER';
  return /^-P FORWARD DROP$/m.test(rules) ? 'FORWARD' : undefined;
}

export interface ForwardAccept {
  remove(): Promise<void>;
}

export async function addForwardAccept(mark: number, table: string): Promise<ForwardAccept> {
  const chain = await targetChain();
  if (!chain) return { remove: async () => {} };
  await exec('iptables', ['-w', '5', '-I', chain, '1', ...ruleArgs(mark, table)]);
  return {
    remove: async () => {
      await exec('iptables', ['-w', '5', '-D', chain, ...ruleArgs(mark, table)]).catch(() => {});
    },
  };
}

export interface ForwardAcceptRule {
  chain: string;
  table: string;
  args: string[];
}

/** The forward-accept rules in one chain's `iptables -S` listing; any other rule is left alone. */
export function parseForwardAccepts(chain: string, rules: string): ForwardAcceptRule[] {
  const found: ForwardAcceptRule[] = [];
  for (const line of rules.split('\n')) {
    const match =
      /^-A (\S+) -m connmark --mark (0x[0-9a-f]+)(?:\/0xffffffff)? -m comment --comment "?grexal (grexal_[A-Za-z0-9_]+)"? -j ACCEPT$/.exec(
        line,
      );
    if (match?.[1] !== chain || !match[2] || !match[3]) continue;
    found.push({ chain, table: match[3], args: ruleArgs(Number(match[2]), match[3]) });
  }
  return found;
}

export async function removeForwardAccept(chain: string, args: string[]): Promise<void> {
  await exec('iptables', ['-w', '5', '-D', chain, ...args]).catch(() => {});
}

/** Forward-accept rules on this host (to reap those whose table is gone). */
export async function listForwardAccepts(): Promise<ForwardAcceptRule[]> {
  const found: ForwardAcceptRule[] = [];
  for (const chain of ['DOCKER-USER', 'FORWARD']) {
    const rules = await exec('iptables', ['-w', '5', '-S', chain]).catch(() => '');
    found.push(...parseForwardAccepts(chain, rules));
  }
  return found;
}
