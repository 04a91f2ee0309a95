/** `--network none|public` and `--allow DEST` (repeatable, implies allow) → the orchestrator's policy. */
import { ValidationError } from '../errors.ts';
import { type NetworkPolicyInput, parseNetworkPolicy } from '../network/index.ts';

export const NETWORK_FLAGS = {
  network: { type: 'string' },
  allow: { type: 'string', multiple: true },
} as const;

export const NETWORK_FLAGS_USAGE = `  --network MODE     none (loopback only) or public (default: any public address)
  --allow DEST       allow only DEST (host, *.suffix or CIDR, optional :port); repeatable`;

interface NetworkFlagValues {
  network?: string;
  allow?: string[];
}

/** Undefined when no flag is given (the manifest's policy, else public); throws on bad flags. */
export function parseNetworkFlags(values: NetworkFlagValues): NetworkPolicyInput | undefined {
  const { network, allow } = values;
  if (allow && allow.length > 0) {
    if (network !== undefined && network !== 'allow') {
      throw new ValidationError(
        [
          {
            code: 'E_NETWORK_MODE_INVALID',
            path: '--network',
            message: `--network ${network} and --allow contradict each other.`,
            fix: 'Give --allow alone (it implies allow), or --network alone.',
          },
        ],
        'network flags',
      );
    }
    const input = { mode: 'allow' as const, allow };
    parseNetworkPolicy(input, '--allow');
    return input;
  }
  if (network === undefined) return undefined;
  if (network !== 'none' && network !== 'public') {
    throw new ValidationError(
      [
        {
          code: 'E_NETWORK_MODE_INVALID',
          path: '--network',
          message: `'${network}' is not none or public.`,
          fix: 'Give --network none or --network public, or list destinations with --allow.',
        },
      ],
      'network flags',
    );
  }
  return network;
}

/** grexal.json's `network`, beside the connections the runner reads from it. */
export function manifestWithNetwork(manifest: unknown, file: unknown): unknown {
  const network = (file as { network?: unknown } | null)?.network;
  if (network === undefined) return manifest;
  return { ...(typeof manifest === 'object' && manifest !== null ? manifest : {}), network };
}
