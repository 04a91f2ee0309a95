/**
 * The one place a connection or a name is judged. Pure: the proxy and the resolver call it with
 * what they saw, and every outcome names the rule that decided, for the audit event.
 */
import { type Address, formatAddress, parseAddress } from './address.ts';
import { deniedRangeOf } from './denied.ts';
import type { NetworkPolicy } from './policy.ts';
import { ruleMatches, ruleMatchesHost } from './rule.ts';

export type Decision = 'allowed' | 'denied';

export interface Verdict {
  decision: Decision;
  /** `public`, `allow <rule>`, `denied-range <cidr>`, `none` or `not-listed` (the proxy adds `host-address`). */
  rule: string;
  /** One line for the agent and the log when denied. */
  reason?: string;
}

const denied = (rule: string, reason: string): Verdict => ({ decision: 'denied', rule, reason });

/**
 * Judges one outbound connection. `host` is the name the sandbox's resolver answered with this
 * address (undefined for a raw address); the address is what is dialled, so it is checked in
 * every mode, which is what defeats DNS rebinding.
 */
export function decide(
  policy: NetworkPolicy,
  host: string | undefined,
  address: string | Address,
  port: number,
): Verdict {
  const parsed = typeof address === 'string' ? parseAddress(address) : address;
  if (!parsed) return denied('invalid-address', `${String(address)} is not an IP address.`);
  const shown = formatAddress(parsed);
  if (policy.mode === 'none') return denied('none', 'This sandbox has no network (policy none).');
  const range = deniedRangeOf(parsed);
  if (range) {
    return denied(`denied-range ${range.range.text}`, `${shown} is in ${range.why}, always denied.`);
  }
  if (!Number.isInteger(port) || port < 1 || port > 65_535)
    return denied('invalid-port', `Port ${port} is not valid.`);
  if (policy.mode === 'public') return { decision: 'allowed', rule: 'public' };
  const rule = policy.rules.find((r) => ruleMatches(r, { host, address: parsed, port }));
  if (rule) return { decision: 'allowed', rule: `allow ${rule.text}` };
  const what = host ? `${host}:${port} (${shown})` : `${shown}:${port}`;
  return denied('not-listed', `${what} is not in this sandbox's allow list.`);
}

/** Whether the resolver answers a name at all: in `allow` mode only listed names resolve. */
export function decideName(policy: NetworkPolicy, host: string): Verdict {
  if (policy.mode === 'none') return denied('none', 'This sandbox has no network (policy none).');
  if (policy.mode === 'public') return { decision: 'allowed', rule: 'public' };
  const name = host.toLowerCase().replace(/\.$/, '');
  const rule = policy.rules.find((r) => ruleMatchesHost(r, name));
  if (rule) return { decision: 'allowed', rule: `allow ${rule.text}` };
  return denied('not-listed', `${name} is not in this sandbox's allow list.`);
}
