/**
 * One sandbox's OAuth token for one connection: refreshed through the credential provider when it
 * is about to expire, one refresh at a time however many calls wait, and kept for the sandbox's
 * life. A failed refresh breaks the connection for good: later calls answer `broken` at once
 * rather than hammering the provider.
 */
import type { ConnectResult } from '../../sandbox-agent/protocol.ts';
import type { CredentialProvider } from './credential-provider.ts';
import { refreshedTokenSchema } from './credential-provider.ts';
import { CtxError } from './ctx-error.ts';
import { Secret } from './secret.ts';

export type OAuthResult = Extract<ConnectResult, { mode: 'oauth_redirect' }>;

export interface OAuthState {
  accessToken: Secret;
  refreshToken: Secret | undefined;
  expiresAt: number | null;
  tokenType: string;
  scope: string | null;
}

export interface OAuthTokenOptions {
  provider: CredentialProvider;
  /** Refresh when the token expires within this many ms. Default 60 000. */
  refreshWindowMs?: number;
  /** Called with each new secret value before it is handed out, so masking knows it first. */
  learn: (value: Secret) => void;
  /** Called once, when the connection breaks; the reason carries no credential value. */
  onBroken: (reason: string) => void;
  now?: () => number;
}

export const DEFAULT_REFRESH_WINDOW_MS = 60_000;

/** Rejects when `signal` aborts, leaving `promise` (shared with other callers) to run on. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

export class OAuthToken {
  private state: OAuthState | undefined;
  private brokenReason: string | undefined;
  private inflight: Promise<void> | undefined;
  private readonly lifetime = new AbortController();
  private readonly refreshWindowMs: number;
  private readonly now: () => number;

  constructor(
    readonly connectionId: string,
    initial: OAuthState,
    private readonly options: OAuthTokenOptions,
  ) {
    this.state = initial;
    this.refreshWindowMs = options.refreshWindowMs ?? DEFAULT_REFRESH_WINDOW_MS;
    this.now = options.now ?? Date.now;
  }

  get broken(): boolean {
    return this.brokenReason !== undefined;
  }

  /** The current token, refreshed first when it is about to expire. Throws CtxError `broken`. */
  async current(signal?: AbortSignal): Promise<OAuthResult> {
    const state = this.usable();
    if (state.expiresAt !== null && state.expiresAt - this.now() <= this.refreshWindowMs) {
      if (this.options.provider.canRefresh && state.refreshToken) {
        this.inflight ??= this.refresh(state.refreshToken, state.scope).finally(() => {
          this.inflight = undefined;
        });
        await abortable(this.inflight, signal);
      } else if (state.expiresAt <= this.now()) {
        this.breakWith('the token has expired and cannot be refreshed');
      }
    }
    const fresh = this.usable();
    return {
      mode: 'oauth_redirect',
      access_token: fresh.accessToken.reveal(),
      token_type: fresh.tokenType,
      expires_at: fresh.expiresAt,
      scope: fresh.scope,
    };
  }

  /** Drops the token and cancels a refresh in flight. */
  dispose(): void {
    this.state = undefined;
    this.lifetime.abort();
  }

  private usable(): OAuthState {
    // The agent learns that the connection is broken; why (which may name the orchestrator) goes
    // to the runner's event only.
    if (this.brokenReason !== undefined) {
      throw new CtxError(
        'broken',
        `Connection ${this.connectionId} is broken: its token expired or could not be refreshed. The user must reconnect it.`,
      );
    }
    if (!this.state) throw new CtxError('broken', `Connection ${this.connectionId} is no longer available.`);
    return this.state;
  }

  /** Never rejects: a failure breaks the connection, which every waiter then sees. */
  private async refresh(refreshToken: Secret, scope: string | null): Promise<void> {
    try {
      const answer = await this.options.provider.refresh(
        this.connectionId,
        { refreshToken, scope },
        this.lifetime.signal,
      );
      const parsed = refreshedTokenSchema.safeParse(answer);
      if (!parsed.success) throw new Error('the provider answered with something that is not a token');
      const token = parsed.data;
      if (token.expires_at !== null && token.expires_at <= this.now()) {
        throw new Error('the provider answered with a token that has already expired');
      }
      const accessToken = new Secret(token.access_token);
      const rotated = token.refresh_token === undefined ? undefined : new Secret(token.refresh_token);
      this.options.learn(accessToken);
      if (rotated) this.options.learn(rotated);
      if (!this.state) return;
      this.state = {
        accessToken,
        refreshToken: rotated ?? this.state.refreshToken,
        expiresAt: token.expires_at,
        tokenType: token.token_type ?? this.state.tokenType,
        scope: token.scope ?? this.state.scope,
      };
    } catch (error) {
      if (this.lifetime.signal.aborted) return;
      this.breakWith(error instanceof Error ? error.message : 'refreshing the token failed');
    }
  }

  private breakWith(reason: string): void {
    if (this.brokenReason !== undefined) return;
    this.brokenReason = reason;
    this.state = undefined;
    this.options.onBroken(reason);
  }
}
