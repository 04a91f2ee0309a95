/**
 * The effective policy of a sandbox: the agent's manifest may ask, the orchestrator decides. The
 * orchestrator's policy narrows what the manifest asks and never widens it; a manifest rule the
 * orchestrator does not permit refuses the run (naming both) rather than failing it later.
 */

import { ValidationError } from '../errors.ts';
import { cidrCovers } from './address.ts';
import { DEFAULT_POLICY, describePolicy, type NetworkPolicy } from './policy.ts';
import { networkProblem } from './problem-codes.ts';
import { isRuleProblem, parseRule, type Rule } from './rule.ts';

/** True when every destination `inner` allows is allowed by `outer`. */
export function ruleCovers(outer: Rule, inner: Rule): boolean {
  if (outer.port !== undefined && outer.port !== inner.port) return false;
  if (outer.kind === 'cidr') return inner.kind === 'cidr' && cidrCovers(outer.cidr, inner.cidr);
  if (inner.kind === 'cidr') return false;
  const name = inner.kind === 'host' ? inner.host : inner.suffix;
  if (outer.kind === 'host') return inner.kind === 'host' && outer.host === name;
  return name.endsWith(`.${outer.suffix}`) || (inner.kind === 'suffix' && name === outer.suffix);
}

function permits(policy: NetworkPolicy, rule: Rule): boolean {
  if (policy.mode === 'public') return true;
  if (policy.mode === 'none') return false;
  return policy.rules.some((outer) => ruleCovers(outer, rule));
}

export interface EffectivePolicyInput {
  /** The orchestrator's (API `network`, CLI `--network` / `--allow`); undefined when not given. */
  orchestrator?: NetworkPolicy;
  /** The agent's grexal.json `network`; undefined when not declared. */
  manifest?: NetworkPolicy;
  /** Hosts of `browser_login` connections' `loginUrl`s, allowed in `allow` mode. */
  loginHosts?: string[];
}

export function effectivePolicy(input: EffectivePolicyInput): NetworkPolicy {
  const { orchestrator, manifest } = input;
  let policy = narrowed(orchestrator, manifest);
  if (policy.mode === 'allow')
    policy = { mode: 'allow', rules: [...policy.rules, ...loginRules(input.loginHosts ?? [])] };
  return policy;
}

function narrowed(
  orchestrator: NetworkPolicy | undefined,
  manifest: NetworkPolicy | undefined,
): NetworkPolicy {
  if (!manifest) return orchestrator ?? DEFAULT_POLICY;
  if (!orchestrator) return manifest;
  if (manifest.mode === 'none' || orchestrator.mode === 'none') {
    if (manifest.mode === 'allow') throw notPermitted(manifest.rules, orchestrator, manifest);
    return { mode: 'none' };
  }
  // The manifest asks for all public addresses: the orchestrator's allow list (or public) stands.
  if (manifest.mode === 'public') return orchestrator;
  const refused = manifest.rules.filter((rule) => !permits(orchestrator, rule));
  if (refused.length > 0) throw notPermitted(refused, orchestrator, manifest);
  return manifest;
}

function notPermitted(
  refused: Rule[],
  orchestrator: NetworkPolicy,
  manifest: NetworkPolicy,
): ValidationError {
  return new ValidationError(
    refused.map((rule) => ({
      path: 'manifest.network',
      message: `The manifest asks for ${rule.text} (manifest: ${describePolicy(manifest)}), which the orchestrator's policy (${describePolicy(orchestrator)}) does not permit.`,
      ...networkProblem('E_NETWORK_NOT_PERMITTED'),
    })),
    'network policy',
  );
}

/**
 * A login page on the sandbox's own loopback (or any address literal) needs no rule and gets
 * none: loopback works inside every sandbox, and literals inside the denied ranges stay closed.
 */
function loginRules(hosts: string[]): Rule[] {
  const rules: Rule[] = [];
  for (const host of new Set(hosts.map((h) => h.toLowerCase()))) {
    const rule = parseRule(host);
    if (!isRuleProblem(rule) && rule.kind === 'host') rules.push(rule);
  }
  return rules;
}
