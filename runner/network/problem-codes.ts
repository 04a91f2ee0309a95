/**
 * Stable codes for the problems of a network policy. Each appears as `Problem.code` inside an
 * `E_VALIDATION` error, with the path and the fix below; docs/errors.md lists the same codes and
 * a unit test keeps the two in step. A retired code is never reused.
 */
export const NETWORK_PROBLEM_CODES = {
  E_NETWORK_MODE_INVALID: {
    summary: 'A network policy is not `none`, `public` or `{ "mode": "allow", "allow": [...] }`.',
    fix: 'Send "none", "public", or { "mode": "allow", "allow": ["api.example.com:443"] }.',
  },
  E_NETWORK_ALLOW_EMPTY: {
    summary: 'An `allow` policy lists no destination.',
    fix: 'List at least one destination, or use "none" for loopback only.',
  },
  E_NETWORK_RULES_TOO_MANY: {
    summary: 'An `allow` policy lists more than 256 destinations.',
    fix: 'Merge destinations into wildcards (`*.example.com`) or CIDRs.',
  },
  E_NETWORK_HOST_INVALID: {
    summary:
      'A destination is empty or not a valid host name (labels of a-z, 0-9, `-`, at most 253 characters).',
    fix: 'Write a host name such as `api.openai.com`, a wildcard such as `*.googleapis.com`, or a CIDR.',
  },
  E_NETWORK_WILDCARD_INVALID: {
    summary: 'A wildcard is `*` alone or has `*` anywhere but as the whole first label.',
    fix: 'Write `*.example.com` (any name under example.com); `*` alone would be `public`.',
  },
  E_NETWORK_PORT_INVALID: {
    summary: 'A destination port is not a whole number in 1–65535.',
    fix: 'Write the port after a colon, e.g. `api.openai.com:443` or `[2001:db8::/32]:443`.',
  },
  E_NETWORK_CIDR_INVALID: {
    summary: 'A CIDR is malformed: not an address, a prefix out of range, or host bits set.',
    fix: 'Write a network such as `203.0.113.0/24` or `2001:db8::/32`.',
  },
  E_NETWORK_DESTINATION_DENIED: {
    summary:
      'A destination lies inside the always-denied ranges (loopback, private, link-local, metadata, multicast, reserved).',
    fix: 'Remove it: no policy opens these ranges (see docs/network.md).',
  },
  E_NETWORK_NOT_PERMITTED: {
    summary: "The manifest's `network` asks for a destination the orchestrator's policy does not permit.",
    fix: "Widen the orchestrator's policy to include it, or remove it from the agent's grexal.json.",
  },
} as const;

export type NetworkProblemCode = keyof typeof NETWORK_PROBLEM_CODES;

export function networkProblem(code: NetworkProblemCode): { code: NetworkProblemCode; fix: string } {
  return { code, fix: NETWORK_PROBLEM_CODES[code].fix };
}
