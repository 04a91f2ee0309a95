/**
 * The sandbox's DNS server, bound to the host end of its link (every UDP/53 packet of the sandbox
 * is redirected here, whatever server its resolv.conf names). In `allow` mode it answers listed
 * names only, so DNS is no channel out; answers are A records (sandboxes have no IPv6 route), and
 * what it answered is recorded for the proxy. Reserved names (`.test`, `.invalid`, `.localhost`,
 * …) are never sent upstream.
 */
import { createSocket, type Socket } from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { listening } from '../listen.ts';
import { decideName } from './decide.ts';
import { buildResponse, parseQuery, RCODE, TYPE_A } from './dns-wire.ts';
import type { DangerousDnsOverride, NetworkEvent } from './events.ts';
import type { AnsweredNames } from './names.ts';
import type { NetworkPolicy } from './policy.ts';

const RESERVED_SUFFIXES = ['test', 'invalid', 'localhost', 'local', 'example', 'internal', 'arpa', 'onion'];
const UPSTREAM_TIMEOUT_MS = 3_000;

export interface ResolverOptions {
  address: string;
  port: number;
  policy: () => NetworkPolicy;
  names: AnsweredNames;
  onEvent: (event: NetworkEvent) => void;
  override?: DangerousDnsOverride;
  /**
   * Called with what is about to be answered (the fast path adds it to the sandbox's sets); the
   * answer waits for it, at most ANSWER_HOOK_WAIT_MS, so the first connection can take the fast
   * path. A late or failed hook costs speed only: the proxy takes what is not in a set.
   */
  onAnswer?: (name: string, addresses: string[], ttlSeconds: number) => Promise<void>;
}

/**
 * The hook is one nft transaction, ~5 ms; the cap only matters on a host so loaded that a spawn
 * takes longer, where an answer sent before its element would send the connection after it (the
 * bulk transfer of a benchmark, say) through the proxy. DNS clients wait seconds; this is less.
 */
const ANSWER_HOOK_WAIT_MS = 1_000;

function bounded(work: Promise<void> | undefined): Promise<void> {
  if (!work) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    work.catch(() => {}),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ANSWER_HOOK_WAIT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
}

export interface SandboxResolver {
  close(): Promise<void>;
}

type Answer = { rcode: number; addresses: string[]; ttl: number };

async function upstream(resolver: Resolver, name: string): Promise<Answer> {
  try {
    const records = await resolver.resolve4(name, { ttl: true });
    return { rcode: RCODE.NOERROR, addresses: records.map((r) => r.address), ttl: records[0]?.ttl ?? 60 };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA')
      return { rcode: code === 'ENOTFOUND' ? RCODE.NXDOMAIN : RCODE.NOERROR, addresses: [], ttl: 60 };
    return { rcode: RCODE.SERVFAIL, addresses: [], ttl: 0 };
  }
}

export function isReservedName(name: string): boolean {
  const last = name.slice(name.lastIndexOf('.') + 1);
  return RESERVED_SUFFIXES.includes(last) || !name.includes('.');
}

export async function startResolver(options: ResolverOptions): Promise<SandboxResolver> {
  const resolver = new Resolver({ timeout: UPSTREAM_TIMEOUT_MS, tries: 2 });
  const socket: Socket = createSocket({ type: 'udp4' });
  // An answer can outlive the sandbox (upstream waits seconds): once closed, it is dropped, since
  // send on a closed socket throws, and that throw in a late callback would end the runner.
  let closed = false;
  const answer = async (name: string, type: number): Promise<Answer> => {
    const override = options.override?.[name];
    if (override)
      return { rcode: RCODE.NOERROR, addresses: type === TYPE_A ? [override.address] : [], ttl: 60 };
    if (isReservedName(name)) return { rcode: RCODE.NXDOMAIN, addresses: [], ttl: 60 };
    // AAAA and the rest: an empty answer, so clients fall back to A at once.
    if (type !== TYPE_A) return { rcode: RCODE.NOERROR, addresses: [], ttl: 60 };
    return upstream(resolver, name);
  };
  socket.on('message', (packet, peer) => {
    const question = parseQuery(packet);
    if (!question) return;
    const reply = (rcode: number, addresses: string[] = [], ttl = 60) => {
      if (!closed)
        socket.send(buildResponse(question, rcode, addresses, ttl), peer.port, peer.address, () => {});
    };
    const verdict = decideName(options.policy(), question.name);
    if (verdict.decision === 'denied') {
      options.onEvent({
        type: 'network',
        kind: 'dns',
        host: question.name,
        port: 53,
        decision: 'denied',
        rule: verdict.rule,
        reason: verdict.reason,
        bytesUp: 0,
        bytesDown: 0,
        durationMs: 0,
      });
      reply(RCODE.REFUSED);
      return;
    }
    void answer(question.name, question.type).then(async (result) => {
      const addresses = result.addresses.filter((a) => isIPv4(a));
      for (const address of addresses) options.names.record(question.name, address, result.ttl);
      if (addresses.length > 0) await bounded(options.onAnswer?.(question.name, addresses, result.ttl));
      reply(result.rcode, addresses, result.ttl);
    });
  });
  socket.on('error', () => {});
  await listening(socket, (done) => socket.bind(options.port, options.address, done));
  return {
    close: () => {
      closed = true;
      return new Promise((resolve) => socket.close(() => resolve()));
    },
  };
}
