/**
 * A run's network policy from what its request says: the orchestrator's `network`, the manifest's
 * own `network` (split off here: runner/inject knows connections only) and the hosts of its
 * browser_login connections, combined by the network's rules (runner/network/effective-policy).
 */
import { effectivePolicy, type NetworkPolicy, parseNetworkPolicy } from '../network/index.ts';

export interface RunPolicy {
  /** The manifest without its `network` (undefined when nothing else was in it). */
  manifest: unknown;
  policy: NetworkPolicy;
}

export function runPolicy(manifest: unknown, network: unknown): RunPolicy {
  const orchestrator = network === undefined ? undefined : parseNetworkPolicy(network, 'network');
  const loginHosts = loginHostsOf(manifest);
  if (!hasManifestNetwork(manifest)) {
    return { manifest, policy: effectivePolicy({ orchestrator, loginHosts }) };
  }
  const { network: declared, ...connections } = manifest;
  const policy = effectivePolicy({
    orchestrator,
    manifest: parseNetworkPolicy(declared, 'manifest.network'),
    loginHosts,
  });
  return { manifest: Object.keys(connections).length === 0 ? undefined : connections, policy };
}

export function hasManifestNetwork(manifest: unknown): manifest is { network: unknown } {
  return typeof manifest === 'object' && manifest !== null && 'network' in manifest;
}

/** Hosts of the manifest's browser_login `loginUrl`s, read defensively (validated elsewhere). */
function loginHostsOf(manifest: unknown): string[] {
  const connections = (manifest as { connections?: unknown } | null)?.connections;
  if (!Array.isArray(connections)) return [];
  return connections.flatMap((c: unknown) => {
    const { mode, loginUrl } = (c ?? {}) as { mode?: unknown; loginUrl?: unknown };
    if (mode !== 'browser_login' || typeof loginUrl !== 'string' || !URL.canParse(loginUrl)) return [];
    return [new URL(loginUrl).hostname];
  });
}
