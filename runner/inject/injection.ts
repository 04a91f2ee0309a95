/**
 * The seam the sandbox lifecycle calls: a manifest and a credentials payload in, everything the
 * sandbox needs to deliver them out (env for the agent, the file tar, a masker, and the answers to
 * ctx.connect()). Validation happens here, before anything exists.
 */
import type { Transform } from 'node:stream';
import { type ConnectResult, FILES_ROOT } from '../../sandbox-agent/protocol.ts';
import type { ParsedCredential } from './check-credentials.ts';
import { type CredentialProvider, StaticCredentialProvider } from './credential-provider.ts';
import { CtxError } from './ctx-error.ts';
import { buildFilesTar, type FileEntry } from './files.ts';
import { Masker } from './masker.ts';
import type { MaskingStreamOptions } from './masking-stream.ts';
import { FILE_REF_PREFIX } from './names.ts';
import { OAuthToken } from './oauth.ts';
import { type Connection, type ConnectionMode, DEFAULT_MAX_TOTAL_FILE_BYTES } from './schemas.ts';
import { secretInputFileContent } from './secret-input-file.ts';
import { validateInjectionInput } from './validate.ts';

export type InjectEvent =
  /** An audit record of one successful ctx.connect(): which connection, never a value. */
  | { type: 'connect'; connectionId: string; mode: ConnectionMode; at: number }
  | { type: 'connection.broken'; connectionId: string; reason: string; at: number };

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
  /** Answers ctx.connect(). Throws CtxError `not_declared`, `not_connected` or `broken`. */
  connect(connectionId: string, signal?: AbortSignal): Promise<ConnectResult>;
  connectionLabel(connectionId: string): string | undefined;
  /** Drops every credential from memory; connect() answers `broken` afterwards. */
  dispose(): void;
}

const filePath = (connectionId: string, name: string): string => `${FILES_ROOT}/${connectionId}/${name}`;

function learnAll(
  masker: Masker,
  connections: readonly Connection[],
  credentials: Map<string, ParsedCredential>,
): void {
  for (const c of connections) {
    const cred = credentials.get(c.id);
    if (cred?.mode === 'secret_input' && c.mode === 'secret_input') {
      for (const field of c.fields) {
        const value = cred.fields.get(field.key);
        if (value && field.secret !== false) masker.learn(value);
      }
    } else if (cred?.mode === 'oauth_redirect') {
      masker.learn(cred.accessToken);
      if (cred.refreshToken) masker.learn(cred.refreshToken);
    } else if (cred?.mode === 'file_upload') {
      for (const content of cred.files.values()) masker.learnFile(content);
    }
  }
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
  const entries: FileEntry[] = [];
  for (const c of connections) {
    const cred = credentials.get(c.id);
    if (cred?.mode === 'file_upload') {
      for (const [name, content] of cred.files) entries.push({ connectionId: c.id, name, content });
    } else if (cred?.mode === 'secret_input' && c.mode === 'secret_input' && c.file) {
      entries.push({ connectionId: c.id, name: c.file, content: secretInputFileContent(cred.fields) });
    }
  }
  return entries;
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
  learnAll(masker, connections, credentials);
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

class PreparedInjection implements Injection {
  private readonly byId: Map<string, Connection>;
  private readonly tokens = new Map<string, OAuthToken>();
  private disposed = false;

  constructor(
    connections: readonly Connection[],
    private readonly credentials: Map<string, ParsedCredential>,
    readonly masker: Masker,
    readonly env: Record<string, string>,
    readonly filesTar: Buffer | undefined,
    private readonly options: PrepareInjectionInput,
  ) {
    this.byId = new Map(connections.map((c) => [c.id, c]));
    const provider = options.provider ?? new StaticCredentialProvider();
    for (const [id, cred] of credentials) {
      if (cred.mode !== 'oauth_redirect') continue;
      const token = new OAuthToken(id, cred, {
        provider,
        refreshWindowMs: options.refreshWindowMs,
        learn: (value) => masker.learn(value),
        onBroken: (reason) =>
          this.emit({
            type: 'connection.broken',
            connectionId: id,
            reason: masker.mask(reason),
            at: Date.now(),
          }),
      });
      this.tokens.set(id, token);
    }
  }

  mask(text: string): string {
    return this.masker.mask(text);
  }

  createMaskingStream(options?: MaskingStreamOptions): Transform {
    return this.masker.createMaskingStream(options);
  }

  connectionLabel(connectionId: string): string | undefined {
    return this.byId.get(connectionId)?.label;
  }

  async connect(connectionId: string, signal?: AbortSignal): Promise<ConnectResult> {
    const connection = this.byId.get(connectionId);
    if (!connection) {
      const known = [...this.byId.keys()].join(', ') || 'none';
      throw new CtxError(
        'not_declared',
        `Connection ${JSON.stringify(connectionId.slice(0, 128))} is not declared in the manifest (declared: ${known}).`,
      );
    }
    const result = await this.resultFor(connection, signal);
    this.emit({ type: 'connect', connectionId, mode: connection.mode, at: Date.now() });
    return result;
  }

  private async resultFor(connection: Connection, signal: AbortSignal | undefined): Promise<ConnectResult> {
    if (connection.mode === 'browser_login') return { mode: 'browser_login' };
    if (this.disposed)
      throw new CtxError(
        'broken',
        `Connection ${connection.id} is no longer available: the sandbox is ending.`,
      );
    const cred = this.credentials.get(connection.id);
    if (!cred) {
      throw new CtxError(
        'not_connected',
        `Connection ${connection.id} is optional and the user has not connected it.`,
      );
    }
    switch (cred.mode) {
      case 'secret_input':
        return {
          mode: 'secret_input',
          fields: Object.fromEntries([...cred.fields].map(([k, v]) => [k, v.reveal()])),
        };
      case 'oauth_redirect':
        return this.tokens.get(connection.id)!.current(signal);
      case 'file_upload':
        return {
          mode: 'file_upload',
          dir: `${FILES_ROOT}/${connection.id}`,
          files: Object.fromEntries(
            [...cred.files.keys()].map((name) => [name, filePath(connection.id, name)]),
          ),
        };
    }
  }

  private emit(event: InjectEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // A listener's failure must not fail the agent's call.
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const token of this.tokens.values()) token.dispose();
    this.tokens.clear();
    for (const cred of this.credentials.values())
      if (cred.mode === 'file_upload') for (const b of cred.files.values()) b.fill(0);
    this.credentials.clear();
    this.filesTar?.fill(0);
    for (const name of Object.keys(this.env)) delete this.env[name];
  }
}
