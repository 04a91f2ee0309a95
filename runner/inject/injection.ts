/**
 * The seam the sandbox lifecycle calls: a manifest and a credentials payload in, everything the
 * sandbox needs to deliver them out (env for the agent, the file tar, a masker, and the answers to
 * ctx.connect()). Validation happens here, before anything exists.
 */
import type { Transform } from 'node:stream';
import type { ConnectResult } from '../../sandbox-agent/protocol.ts';
import type { ParsedCredential } from './check-credentials.ts';
import type { CredentialProvider } from './credential-provider.ts';
import { buildFilesTar, type FileEntry } from './files.ts';
import { fileEntriesFor, type LiveFiles } from './live-changes.ts';
import { Masker } from './masker.ts';
import type { MaskingStreamOptions } from './masking-stream.ts';
import { FILE_REF_PREFIX } from './names.ts';
import { filePath, learnOne, PreparedInjection } from './prepared-injection.ts';
import type { WaitingListener } from './reauthorisation.ts';
import { type Connection, type ConnectionMode, DEFAULT_MAX_TOTAL_FILE_BYTES } from './schemas.ts';
import { validateInjectionInput } from './validate.ts';

export type InjectEvent =
  /** An audit record of one successful ctx.connect(): which connection, never a value. */
  | { type: 'connect'; connectionId: string; mode: ConnectionMode; at: number }
  | { type: 'connection.broken'; connectionId: string; reason: string; at: number }
  /** A new credential for a broken connection: the calls that waited for it have it. */
  | { type: 'connection.restored'; connectionId: string; at: number }
  /** A new credential for a healthy (or not connected) connection: later calls get it. */
  | { type: 'connection.updated'; connectionId: string; at: number }
  /** The credential was removed: `connect` answers `revoked` (required) or `not_connected`. */
  | { type: 'connection.revoked'; connectionId: string; required: boolean; at: number };

export interface ConnectOptions {
  signal?: AbortSignal;
  /** Default true: a broken connection waits for a new credential, up to its reconnect timeout. */
  wait?: boolean;
}

export interface PrepareInjectionInput {
  /** `{ connections: [...] }` as in grexal.json. */
  manifest: unknown;
  /** Keyed by connection id; absent or null when there are none. */
  credentials: unknown;
  /** Refreshes OAuth tokens. Default: StaticCredentialProvider (no refresh). */
  provider?: CredentialProvider;
  /** Refresh an OAuth token that expires within this many ms. Default 60 000. */
  refreshWindowMs?: number;
  /** Cap on all files together. Default 8 MiB. */
  maxTotalFileBytes?: number;
  /** Overrides every connection's `reconnectTimeoutMs` (the manifest's, else 600 000). */
  reconnectTimeoutMs?: number;
  onEvent?: (event: InjectEvent) => void;
}

export interface Injection {
  /** Secret env vars for the agent process (and its children) only. */
  readonly env: Record<string, string>;
  /** `<connection_id>/<name>` entries for sandbox-agent/files.ts; absent when there are no files. */
  readonly filesTar?: Buffer;
  readonly masker: Masker;
  mask(text: string): string;
  createMaskingStream(options?: MaskingStreamOptions): Transform;
  /** Answers ctx.connect(). Throws CtxError `not_declared`, `not_connected`, `revoked` or `broken`. */
  connect(connectionId: string, options?: ConnectOptions): Promise<ConnectResult>;
  connectionLabel(connectionId: string): string | undefined;
  /**
   * A new credential for one connection (validated as a create's; ValidationError otherwise): the
   * masker learns it first, then its files are replaced, then later calls get it.
   */
  update(connectionId: string, credential: unknown, files: LiveFiles): Promise<{ restored: boolean }>;
  /** Removes one connection's credential and files; idempotent. */
  remove(connectionId: string, files: LiveFiles): Promise<void>;
  /** Called with the number of `connect` calls waiting for a new credential, whenever it changes. */
  onWaiting(listener: WaitingListener): () => void;
  /** Drops every credential from memory; connect() answers `broken` afterwards. */
  dispose(): void;
}

function envOf(
  connections: readonly Connection[],
  credentials: Map<string, ParsedCredential>,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const c of connections) {
    const cred = credentials.get(c.id);
    if (!cred || !('env' in c) || !c.env) continue;
    for (const [name, target] of Object.entries(c.env)) {
      if (target.startsWith(FILE_REF_PREFIX))
        env[name] = filePath(c.id, target.slice(FILE_REF_PREFIX.length));
      else if (cred.mode === 'secret_input') {
        const value = cred.fields.get(target);
        if (value) env[name] = value.reveal();
      }
    }
  }
  return env;
}

function fileEntries(
  connections: readonly Connection[],
  credentials: Map<string, ParsedCredential>,
): FileEntry[] {
  return connections.flatMap((c) => fileEntriesFor(c, credentials.get(c.id)));
}

/**
 * Validates the manifest and credentials (throws ValidationError listing every problem, or
 * GrexalError E_MISSING_CREDENTIALS naming every missing required connection) and prepares their
 * delivery. Nothing outside memory is touched.
 */
export async function prepareInjection(input: PrepareInjectionInput): Promise<Injection> {
  const { connections, credentials } = validateInjectionInput(
    input.manifest,
    input.credentials,
    input.maxTotalFileBytes ?? DEFAULT_MAX_TOTAL_FILE_BYTES,
  );
  const masker = new Masker();
  for (const c of connections) learnOne(masker, c, credentials.get(c.id));
  const entries = fileEntries(connections, credentials);
  const filesTar = entries.length > 0 ? await buildFilesTar(entries) : undefined;
  // The decoded files now live in the tar only.
  for (const entry of entries) entry.content.fill(0);
  return new PreparedInjection(
    connections,
    credentials,
    masker,
    envOf(connections, credentials),
    filesTar,
    input,
  );
}
