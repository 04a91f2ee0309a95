/**
 * The sandbox's egress proxy, bound to the host end of its link. nftables redirects every TCP
 * connection of the sandbox here; the proxy reads where it was going (conntrack), judges the
 * address with the name the sandbox's resolver answered for it, and either resets the connection
 * at once or dials the address itself and relays bytes. One audit event per connection, with
 * byte counts and duration, never content.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { listening } from '../listen.ts';
import type { OriginalDestination } from './conntrack.ts';
import type { ConnectionTuple } from './ct-lookup.ts';
import { decide, type Verdict } from './decide.ts';
import type { DangerousDnsOverride, NetworkEvent } from './events.ts';
import { isHostAddress } from './host-addresses.ts';
import type { AnsweredNames } from './names.ts';
import type { NetworkPolicy } from './policy.ts';

/** Dialling a public address that does not answer ends here, not at the kernel's two minutes. */
const DIAL_TIMEOUT_MS = 15_000;

export interface ProxyOptions {
  address: string;
  port: number;
  sandboxAddress: string;
  policy: () => NetworkPolicy;
  names: AnsweredNames;
  onEvent: (event: NetworkEvent) => void;
  override?: DangerousDnsOverride;
  /** Where a redirected connection was going (conntrack). */
  lookup: (tuple: ConnectionTuple) => Promise<OriginalDestination | undefined>;
}

export interface SandboxProxy {
  close(): Promise<void>;
}

/** What judging a connection needs: the policy in force and what the resolver answered. */
export interface JudgeContext {
  policy: () => NetworkPolicy;
  names: AnsweredNames;
}

/** The verdict on one connection to a dialled address, and the name it was judged under. */
export function judge(
  options: JudgeContext,
  address: string,
  port: number,
): { verdict: Verdict; host?: string } {
  const judged = judgeByPolicy(options, address, port);
  // After the policy, so a private address keeps naming its denied range.
  if (judged.verdict.decision === 'allowed' && isHostAddress(address)) {
    const reason = `${address} is an address of the host itself, always denied.`;
    return { ...judged, verdict: { decision: 'denied', rule: 'host-address', reason } };
  }
  return judged;
}

function judgeByPolicy(
  options: JudgeContext,
  address: string,
  port: number,
): { verdict: Verdict; host?: string } {
  const policy = options.policy();
  const names = options.names.namesFor(address);
  if (names.length === 0) return { verdict: decide(policy, undefined, address, port) };
  let first: { verdict: Verdict; host?: string } | undefined;
  for (const host of names) {
    const verdict = decide(policy, host, address, port);
    if (verdict.decision === 'allowed') return { verdict, host };
    first ??= { verdict, host };
  }
  return first ?? { verdict: decide(policy, undefined, address, port) };
}

function dialHostFor(override: DangerousDnsOverride | undefined, address: string): string {
  if (!override) return address;
  for (const entry of Object.values(override))
    if (entry.address === address && entry.dialHost) return entry.dialHost;
  return address;
}

function relay(
  client: Socket,
  options: ProxyOptions,
  target: { address: string; port: number; host?: string },
  verdict: Verdict,
): void {
  const started = performance.now();
  const upstream = connect({
    host: dialHostFor(options.override, target.address),
    port: target.port,
    noDelay: true,
    // A client that half-closes after its request still gets the whole answer.
    allowHalfOpen: true,
  });
  let ended = false;
  const finish = (reason?: string) => {
    if (ended) return;
    ended = true;
    options.onEvent({
      type: 'network',
      kind: 'tcp',
      ...(target.host ? { host: target.host } : {}),
      port: target.port,
      address: target.address,
      decision: verdict.decision,
      rule: verdict.rule,
      ...(reason ? { reason } : {}),
      via: 'proxy',
      bytesUp: upstream.bytesWritten,
      bytesDown: client.bytesWritten,
      durationMs: Math.round(performance.now() - started),
    });
  };
  upstream.setTimeout(DIAL_TIMEOUT_MS, () => upstream.destroy(new Error('connect timed out')));
  upstream.once('connect', () => {
    upstream.setTimeout(0);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
  upstream.on('error', (error) => {
    finish(`upstream: ${(error as NodeJS.ErrnoException).code ?? error.message}`);
    client.resetAndDestroy();
  });
  client.on('error', () => upstream.destroy());
  upstream.on('close', () => {
    finish();
    client.end();
  });
  client.on('close', () => upstream.destroy());
}

export async function startProxy(options: ProxyOptions): Promise<SandboxProxy> {
  const open = new Set<Socket>();
  const server: Server = createServer(
    { pauseOnConnect: true, noDelay: true, allowHalfOpen: true },
    (client) => {
      open.add(client);
      client.once('close', () => open.delete(client));
      client.on('error', () => {});
      void (async () => {
        const sandboxPort = client.remotePort;
        const original =
          sandboxPort === undefined
            ? undefined
            : await options.lookup({
                proxyAddress: options.address,
                proxyPort: options.port,
                sandboxAddress: options.sandboxAddress,
                sandboxPort,
              });
        if (!original) {
          options.onEvent({
            type: 'network',
            kind: 'tcp',
            port: 0,
            decision: 'denied',
            rule: 'unknown-destination',
            reason: 'The original destination could not be read.',
            bytesUp: 0,
            bytesDown: 0,
            durationMs: 0,
          });
          client.resetAndDestroy();
          return;
        }
        const { verdict, host } = judge(options, original.address, original.port);
        if (verdict.decision === 'denied') {
          options.onEvent({
            type: 'network',
            kind: 'tcp',
            ...(host ? { host } : {}),
            port: original.port,
            address: original.address,
            decision: 'denied',
            rule: verdict.rule,
            reason: verdict.reason,
            bytesUp: 0,
            bytesDown: 0,
            durationMs: 0,
          });
          client.resetAndDestroy();
          return;
        }
        relay(client, options, { ...original, host }, verdict);
      })();
    },
  );
  await listening(server, (done) => server.listen(options.port, options.address, done));
  return {
    close: () =>
      new Promise((resolve) => {
        for (const socket of open) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
