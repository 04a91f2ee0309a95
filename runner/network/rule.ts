/**
 * One destination of an `allow` policy, parsed from its text: `api.openai.com`, `*.googleapis.com`,
 * `203.0.113.0/24` or `2001:db8::/32`, each with an optional `:port` (IPv6 in brackets then:
 * `[2001:db8::/32]:443`). A bare address is a /32 or /128 CIDR.
 */
import { type Cidr, cidrContains, parseAddress, parseCidr } from './address.ts';
import { deniedRangeOf } from './denied.ts';
import type { NetworkProblemCode } from './problem-codes.ts';

export type Rule =
  | { kind: 'host'; host: string; port?: number; text: string }
  | { kind: 'suffix'; suffix: string; port?: number; text: string }
  | { kind: 'cidr'; cidr: Cidr; port?: number; text: string };

export interface RuleProblem {
  code: NetworkProblemCode;
  message: string;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/** Names that resolve to the host itself or the local network whatever a resolver says. */
const LOCAL_SUFFIXES = ['localhost', 'local', 'internal', 'arpa'];

function hostProblem(host: string): RuleProblem | undefined {
  const shown = JSON.stringify(host);
  if (host === '') return { code: 'E_NETWORK_HOST_INVALID', message: 'Empty destination.' };
  if (host.includes('*')) {
    return {
      code: 'E_NETWORK_WILDCARD_INVALID',
      message: `${shown}: \`*\` is allowed only as \`*.\` at the start.`,
    };
  }
  const labels = host.split('.');
  if (host.length > 253 || !labels.every((label) => LABEL.test(label)) || /^\d+$/.test(labels.at(-1) ?? '')) {
    return { code: 'E_NETWORK_HOST_INVALID', message: `${shown} is not a valid host name.` };
  }
  const last = labels.at(-1) ?? '';
  if (LOCAL_SUFFIXES.includes(last) || host === 'metadata.google.internal') {
    return {
      code: 'E_NETWORK_DESTINATION_DENIED',
      message: `${shown} names the host or its local network (.${last}), which is always denied.`,
    };
  }
  return undefined;
}

function splitPort(text: string): { dest: string; port?: string } {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return { dest: text };
    const rest = text.slice(close + 1);
    return rest.startsWith(':')
      ? { dest: text.slice(1, close), port: rest.slice(1) }
      : { dest: text.slice(1, close) + rest };
  }
  const colons = text.split(':').length - 1;
  // More than one colon without brackets is an IPv6 literal, which carries no port.
  if (colons !== 1) return { dest: text };
  const at = text.indexOf(':');
  return { dest: text.slice(0, at), port: text.slice(at + 1) };
}

function parsePort(text: string | undefined): number | RuleProblem | undefined {
  if (text === undefined) return undefined;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : Number.NaN;
  if (port >= 1 && port <= 65_535) return port;
  return { code: 'E_NETWORK_PORT_INVALID', message: `Port ${JSON.stringify(text)} is not in 1–65535.` };
}

function cidrRule(dest: string, port: number | undefined): Rule | RuleProblem {
  const parsed = parseCidr(dest);
  if ('error' in parsed)
    return { code: 'E_NETWORK_CIDR_INVALID', message: `${JSON.stringify(dest)}: ${parsed.error}.` };
  const first = deniedRangeOf({ family: parsed.family, value: parsed.base });
  const bits = parsed.family === 4 ? 32n : 128n;
  const lastValue = parsed.base | ((1n << (bits - BigInt(parsed.prefix))) - 1n);
  const last = deniedRangeOf({ family: parsed.family, value: lastValue });
  // Ranges are contiguous, so a CIDR whose two ends share a denied range lies wholly inside it.
  if (first && first === last) {
    return {
      code: 'E_NETWORK_DESTINATION_DENIED',
      message: `${parsed.text} is inside ${first.range.text}, ${first.why}, which is always denied.`,
    };
  }
  const text =
    port === undefined
      ? parsed.text
      : parsed.family === 6
        ? `[${parsed.text}]:${port}`
        : `${parsed.text}:${port}`;
  return { kind: 'cidr', cidr: parsed, port, text };
}

export function parseRule(input: string): Rule | RuleProblem {
  const text = input.trim().toLowerCase();
  if (text.includes('://')) {
    return {
      code: 'E_NETWORK_HOST_INVALID',
      message: `${JSON.stringify(text)}: write the host name alone, without a scheme.`,
    };
  }
  const { dest, port: portText } = splitPort(text);
  const port = parsePort(portText);
  if (typeof port === 'object') return port;
  const withPort = (s: string) => (port ? `${s}:${port}` : s);
  if (dest.includes('/') || parseAddress(dest)) return cidrRule(dest, port);
  if (/^[\d.]+$/.test(dest)) {
    return {
      code: 'E_NETWORK_CIDR_INVALID',
      message: `${JSON.stringify(dest)} is not a valid IPv4 address.`,
    };
  }
  if (dest === '*' || dest === '*.') {
    return { code: 'E_NETWORK_WILDCARD_INVALID', message: '`*` alone would allow everything; use "public".' };
  }
  if (dest.startsWith('*.')) {
    const suffix = dest.slice(2);
    const problem = hostProblem(suffix);
    return problem ?? { kind: 'suffix', suffix, port, text: withPort(dest) };
  }
  return hostProblem(dest) ?? { kind: 'host', host: dest.replace(/\.$/, ''), port, text: withPort(dest) };
}

export function isRuleProblem(value: Rule | RuleProblem): value is RuleProblem {
  return 'code' in value;
}

/** Whether a host name falls under a host or suffix rule (never a CIDR rule). */
export function ruleMatchesHost(rule: Rule, host: string): boolean {
  if (rule.kind === 'host') return rule.host === host;
  if (rule.kind === 'suffix') return host.endsWith(`.${rule.suffix}`);
  return false;
}

export function ruleMatches(
  rule: Rule,
  target: { host?: string; address?: ReturnType<typeof parseAddress>; port?: number },
): boolean {
  if (rule.port !== undefined && target.port !== undefined && rule.port !== target.port) return false;
  if (rule.kind === 'cidr') return target.address !== undefined && cidrContains(rule.cidr, target.address);
  return target.host !== undefined && ruleMatchesHost(rule, target.host);
}
