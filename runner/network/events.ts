/** The audit record of one outbound connection or one refused name. Never a path, query or header. */
import type { Decision } from './decide.ts';

export interface NetworkEvent {
  type: 'network';
  /** `tcp` for a connection, `dns` for a name the resolver refused. */
  kind: 'tcp' | 'dns';
  /** The name the sandbox's resolver answered for the address, when there was one. */
  host?: string;
  port: number;
  address?: string;
  decision: Decision;
  rule: string;
  reason?: string;
  /**
   * Who carried an allowed TCP connection: `kernel` (the fast path, bytes counted by conntrack
   * with IP headers) or `proxy` (relayed by the runner, payload bytes). Absent when refused.
   */
  via?: 'kernel' | 'proxy';
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
}

/**
 * Test-only name overrides: `name → { address, dialHost }`. The resolver answers `address`; the
 * proxy decides on that address as usual and then dials `dialHost` instead (a test's own listener
 * on the host's loopback). Only `.test` names are accepted, and `grexal serve` refuses the option
 * unless explicitly enabled.
 */
export type DangerousDnsOverride = Record<string, { address: string; dialHost?: string }>;
