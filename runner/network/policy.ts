/**
 * The network policy of a sandbox: what callers send (`networkPolicySchema`, zod, every problem
 * with its code, path and fix) and its parsed form.
 *   - `none`: loopback only, no DNS.
 *   - `public` (the default): any public address; the always-denied ranges stay denied.
 *   - `allow`: only the listed destinations.
 */
import { z } from 'zod';
import { parseOrThrow } from '../validation.ts';
import { NETWORK_PROBLEM_CODES, networkProblem } from './problem-codes.ts';
import { isRuleProblem, parseRule, type Rule } from './rule.ts';

export const MAX_RULES = 256;

export type NetworkPolicy = { mode: 'none' } | { mode: 'public' } | { mode: 'allow'; rules: Rule[] };

export const DEFAULT_POLICY: NetworkPolicy = { mode: 'public' };

const ruleSchema = z.string().transform((text, ctx): Rule => {
  const rule = parseRule(text.slice(0, 300));
  if (!isRuleProblem(rule)) return rule;
  ctx.addIssue({ code: 'custom', message: rule.message, params: networkProblem(rule.code) });
  return z.NEVER;
});

const modeIssue = {
  message: NETWORK_PROBLEM_CODES.E_NETWORK_MODE_INVALID.summary,
  params: networkProblem('E_NETWORK_MODE_INVALID'),
};

const allowSchema = z
  .strictObject({
    mode: z.literal('allow'),
    allow: z.array(z.unknown()).superRefine((rules, ctx) => {
      if (rules.length === 0) {
        ctx.addIssue({
          code: 'custom',
          message: 'No destination listed.',
          params: networkProblem('E_NETWORK_ALLOW_EMPTY'),
        });
      }
      if (rules.length > MAX_RULES) {
        ctx.addIssue({
          code: 'custom',
          message: `${rules.length} destinations; at most ${MAX_RULES}.`,
          params: networkProblem('E_NETWORK_RULES_TOO_MANY'),
        });
      }
    }),
  })
  .transform((value, ctx) => {
    const rules: Rule[] = [];
    value.allow.slice(0, MAX_RULES).forEach((raw, i) => {
      const parsed = ruleSchema.safeParse(raw);
      if (parsed.success) rules.push(parsed.data);
      else for (const issue of parsed.error.issues) ctx.addIssue({ ...issue, path: ['allow', i] } as never);
    });
    return { mode: 'allow' as const, rules };
  });

const simpleSchema = z.strictObject({ mode: z.enum(['none', 'public']) });

type Ctx = z.core.$RefinementCtx<unknown>;

function forward(issues: z.core.$ZodIssue[], ctx: Ctx): typeof z.NEVER {
  for (const issue of issues) ctx.addIssue({ ...issue } as never);
  return z.NEVER;
}

/**
 * `"none"`, `"public"`, `{ "mode": "none" | "public" }` or `{ "mode": "allow", "allow": [...] }`.
 * Dispatched by hand on `mode`: a zod union would fold the allow list's own codes into one
 * generic "invalid union" problem.
 */
export const networkPolicySchema = z.unknown().transform((input, ctx): NetworkPolicy => {
  if (input === 'none' || input === 'public') return { mode: input };
  const isObject = typeof input === 'object' && input !== null && !Array.isArray(input);
  const mode = isObject ? (input as { mode?: unknown }).mode : undefined;
  if (mode === 'allow') {
    const parsed = allowSchema.safeParse(input, { reportInput: true });
    return parsed.success ? parsed.data : forward(parsed.error.issues, ctx);
  }
  if (mode === 'none' || mode === 'public') {
    const parsed = simpleSchema.safeParse(input, { reportInput: true });
    return parsed.success ? parsed.data : forward(parsed.error.issues, ctx);
  }
  ctx.addIssue({ code: 'custom', ...modeIssue, path: isObject ? ['mode'] : [] });
  return z.NEVER;
});

/** What callers send; validated by networkPolicySchema. */
export type NetworkPolicyInput =
  | 'none'
  | 'public'
  | { mode: 'none' | 'public' }
  | { mode: 'allow'; allow: string[] };

export function parseNetworkPolicy(input: unknown, prefix = 'network'): NetworkPolicy {
  return parseOrThrow(networkPolicySchema, input, 'network policy', prefix);
}

/** The policy as callers write it, for GET answers and error messages. */
export function describePolicy(policy: NetworkPolicy): string {
  if (policy.mode !== 'allow') return policy.mode;
  const shown = policy.rules.slice(0, 5).map((rule) => rule.text);
  return `allow [${shown.join(', ')}${policy.rules.length > 5 ? `, … ${policy.rules.length - 5} more` : ''}]`;
}

export function policyToJson(policy: NetworkPolicy): { mode: string; allow?: string[] } {
  return policy.mode === 'allow'
    ? { mode: 'allow', allow: policy.rules.map((rule) => rule.text) }
    : { mode: policy.mode };
}
