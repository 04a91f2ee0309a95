/**
 * The live half of an injection: answers to ctx.connect() (waiting for a broken connection to be
 * re-authorised), and the credential changes of a running sandbox (rotate, remove).
 */
import type { Transform } from 'node:stream';
import { type ConnectResult, FILES_ROOT } from '../../sandbox-agent/protocol.ts';
import { GrexalError } from '../errors.ts';
import type { ParsedCredential } from './check-credentials.ts';
import { type CredentialProvider, StaticCredentialProvider } from './credential-provider.ts';
import { CtxError } from './ctx-error.ts';
import { buildFilesTar } from './files.ts';
import type { ConnectOptions, InjectEvent, Injection, PrepareInjectionInput } from './injection.ts';
import {
  checkChange,
  connectionForChange,
  fileEntriesFor,
  filesBytesExcept,
  hasFileChannel,
  type LiveFiles,
} from './live-changes.ts';
import type { Masker } from './masker.ts';
import type { MaskingStreamOptions } from './masking-stream.ts';
import { OAuthToken } from './oauth.ts';
import { Reauthorisation, type WaitingListener } from './reauthorisation.ts';
import {
  type Connection,
  DEFAULT_MAX_TOTAL_FILE_BYTES,
  DEFAULT_RECONNECT_TIMEOUT_MS,
  isRequired,
} from './schemas.ts';

export const filePath = (connectionId: string, name: string): string =>
  `${FILES_ROOT}/${connectionId}/${name}`;

export function learnOne(masker: Masker, connection: Connection, cred: ParsedCredential | undefined): void {
  if (cred?.mode === 'secret_input' && connection.mode === 'secret_input') {
    for (const field of connection.fields) {
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

export class PreparedInjection implements Injection {
  private readonly byId: Map<string, Connection>;
  private readonly tokens = new Map<string, OAuthToken>();
  /** Required connections whose credential was removed: `connect` answers `revoked`. */
  private readonly revoked = new Set<string>();
  private readonly reauth = new Reauthorisation();
  /** One change at a time per connection, so that two PUTs never interleave their files. */
  private readonly changes = new Map<string, Promise<unknown>>();
  private readonly provider: CredentialProvider;
  private disposed = false;

  constructor(
    private readonly connections: readonly Connection[],
    private readonly credentials: Map<string, ParsedCredential>,
    readonly masker: Masker,
    readonly env: Record<string, string>,
    readonly filesTar: Buffer | undefined,
    private readonly options: PrepareInjectionInput,
  ) {
    this.byId = new Map(connections.map((c) => [c.id, c]));
    this.provider = options.provider ?? new StaticCredentialProvider();
    for (const [id, cred] of credentials) if (cred.mode === 'oauth_redirect') this.track(id, cred);
  }

  private track(id: string, cred: Extract<ParsedCredential, { mode: 'oauth_redirect' }>): void {
    this.tokens.get(id)?.dispose();
    const token = new OAuthToken(id, cred, {
      provider: this.provider,
      refreshWindowMs: this.options.refreshWindowMs,
      learn: (value) => this.masker.learn(value),
      onBroken: (reason) => {
        // Waiting becomes possible before anyone hears of the break.
        this.reauth.broke(id, this.reconnectTimeoutMs(id));
        this.emit({
          type: 'connection.broken',
          connectionId: id,
          reason: this.masker.mask(reason),
          at: Date.now(),
        });
      },
    });
    this.tokens.set(id, token);
  }

  private reconnectTimeoutMs(id: string): number {
    const connection = this.byId.get(id);
    const declared = connection?.mode === 'oauth_redirect' ? connection.reconnectTimeoutMs : undefined;
    return this.options.reconnectTimeoutMs ?? declared ?? DEFAULT_RECONNECT_TIMEOUT_MS;
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

  onWaiting(listener: WaitingListener): () => void {
    return this.reauth.onWaiting(listener);
  }

  async connect(connectionId: string, options: ConnectOptions = {}): Promise<ConnectResult> {
    const connection = this.byId.get(connectionId);
    if (!connection) {
      const known = [...this.byId.keys()].join(', ') || 'none';
      throw new CtxError(
        'not_declared',
        `Connection ${JSON.stringify(connectionId.slice(0, 128))} is not declared in the manifest (declared: ${known}).`,
      );
    }
    // Each turn needs a new credential from the orchestrator, so this ends.
    for (;;) {
      try {
        const result = await this.resultFor(connection, options.signal);
        this.emit({ type: 'connect', connectionId, mode: connection.mode, at: Date.now() });
        return result;
      } catch (error) {
        const mayWait =
          error instanceof CtxError &&
          error.code === 'broken' &&
          options.wait !== false &&
          !this.disposed &&
          this.reauth.waitable(connectionId);
        if (!mayWait) throw error;
        await this.reauth.wait(connectionId, options.signal);
      }
    }
  }

  private async resultFor(connection: Connection, signal: AbortSignal | undefined): Promise<ConnectResult> {
    if (connection.mode === 'browser_login') return { mode: 'browser_login' };
    if (this.disposed)
      throw new CtxError(
        'broken',
        `Connection ${connection.id} is no longer available: the sandbox is ending.`,
      );
    const cred = this.credentials.get(connection.id);
    if (!cred) throw this.absentError(connection);
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

  private absentError(connection: Connection): CtxError {
    if (this.revoked.has(connection.id))
      return new CtxError(
        'revoked',
        `Connection ${connection.id} is required and its credential was removed while the agent ran.`,
      );
    return new CtxError(
      'not_connected',
      `Connection ${connection.id} is optional and the user has not connected it.`,
    );
  }

  update(connectionId: string, raw: unknown, files: LiveFiles): Promise<{ restored: boolean }> {
    return this.serialise(connectionId, async () => {
      this.refuseWhenEnded();
      const connection = connectionForChange(this.byId, connectionId);
      const elsewhere = filesBytesExcept(this.connections, this.credentials, connectionId);
      const maxTotal = this.options.maxTotalFileBytes ?? DEFAULT_MAX_TOTAL_FILE_BYTES;
      const cred = checkChange(connection, raw, elsewhere, maxTotal);
      // Masked before it can appear anywhere: the files below, the agent's answers, its output.
      learnOne(this.masker, connection, cred);
      const entries = fileEntriesFor(connection, cred);
      if (entries.length > 0) {
        const tar = await buildFilesTar(entries);
        for (const entry of entries) entry.content.fill(0);
        try {
          await files.replace(connectionId, tar);
        } finally {
          tar.fill(0);
        }
      }
      this.refuseWhenEnded();
      this.forget(connectionId);
      this.credentials.set(connectionId, cred);
      this.revoked.delete(connectionId);
      if (cred.mode === 'oauth_redirect') this.track(connectionId, cred);
      // The event first: the waiting calls resolving ends `awaiting_credentials`, which must follow it.
      const restored = this.reauth.broken(connectionId);
      const type = restored ? 'connection.restored' : 'connection.updated';
      this.emit({ type, connectionId, at: Date.now() });
      this.reauth.restore(connectionId);
      return { restored };
    });
  }

  remove(connectionId: string, files: LiveFiles): Promise<void> {
    return this.serialise(connectionId, async () => {
      this.refuseWhenEnded();
      const connection = connectionForChange(this.byId, connectionId);
      const required = isRequired(connection);
      const present = this.credentials.has(connectionId) || this.tokens.has(connectionId);
      if (!present && (this.revoked.has(connectionId) || !required)) return;
      if (present && hasFileChannel(connection)) await files.remove(connectionId);
      this.forget(connectionId);
      if (required) this.revoked.add(connectionId);
      this.reauth.cancel(connectionId, this.absentError(connection));
      this.emit({ type: 'connection.revoked', connectionId, required, at: Date.now() });
    });
  }

  private refuseWhenEnded(): void {
    if (this.disposed)
      throw new GrexalError(
        'E_SANDBOX_ENDED',
        'The sandbox has ended; its connections can no longer change. Create a new sandbox with the new credential.',
      );
  }

  private async serialise<T>(connectionId: string, change: () => Promise<T>): Promise<T> {
    const before = this.changes.get(connectionId) ?? Promise.resolve();
    const next = before.catch(() => {}).then(change);
    this.changes.set(connectionId, next);
    try {
      return await next;
    } finally {
      if (this.changes.get(connectionId) === next) this.changes.delete(connectionId);
    }
  }

  /** Drops a connection's credential from memory (the masker keeps its values). */
  private forget(connectionId: string): void {
    const old = this.credentials.get(connectionId);
    if (old?.mode === 'file_upload') for (const b of old.files.values()) b.fill(0);
    this.credentials.delete(connectionId);
    this.tokens.get(connectionId)?.dispose();
    this.tokens.delete(connectionId);
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
    this.reauth.cancelAll(
      (id) => new CtxError('broken', `Connection ${id} is no longer available: the sandbox is ending.`),
    );
    for (const token of this.tokens.values()) token.dispose();
    this.tokens.clear();
    for (const cred of this.credentials.values())
      if (cred.mode === 'file_upload') for (const b of cred.files.values()) b.fill(0);
    this.credentials.clear();
    this.filesTar?.fill(0);
    for (const name of Object.keys(this.env)) delete this.env[name];
  }
}
