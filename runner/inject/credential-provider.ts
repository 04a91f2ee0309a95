/**
 * Where a refreshed OAuth token comes from. The runner never talks to an OAuth provider itself:
 * the orchestrator holds the client secrets, so a refresh is a call to it (HttpCredentialProvider)
 * or, with no orchestrator, impossible (StaticCredentialProvider).
 */
import { z } from 'zod';
import { GrexalError } from '../errors.ts';
import { MAX_VALUE_LENGTH, MIN_SECRET_LENGTH } from './credentials-schema.ts';
import { type Secret, toSecret } from './secret.ts';

export interface RefreshRequest {
  refreshToken: Secret;
  /** The scope the token was granted with, when known. */
  scope: string | null;
}

export interface RefreshedToken {
  access_token: string;
  /** Epoch milliseconds; null when the new token does not expire. */
  expires_at: number | null;
  /** A rotated refresh token; the old one stays in use when absent. */
  refresh_token?: string;
  token_type?: string;
  scope?: string;
}

export interface CredentialProvider {
  /** False when `refresh` can never succeed: an expiring token is then used until it expires. */
  readonly canRefresh: boolean;
  /** Exchanges a refresh token for a new access token. Errors never carry a credential value. */
  refresh(connectionId: string, request: RefreshRequest, signal?: AbortSignal): Promise<RefreshedToken>;
}

const tokenValue = z.string().min(MIN_SECRET_LENGTH).max(MAX_VALUE_LENGTH);

/** What a provider must answer; extra members are ignored. */
export const refreshedTokenSchema = z.object({
  access_token: tokenValue,
  expires_at: z.number().int().nonnegative().nullable(),
  refresh_token: tokenValue.optional(),
  token_type: z.string().min(1).max(64).optional(),
  scope: z.string().max(4096).optional(),
});

/** No refresh: the token the run started with is all there is. */
export class StaticCredentialProvider implements CredentialProvider {
  readonly canRefresh = false;

  async refresh(connectionId: string): Promise<RefreshedToken> {
    throw new GrexalError(
      'E_CREDENTIAL_REFRESH_FAILED',
      `Connection ${connectionId} cannot be refreshed: no credential provider is configured. Give the runner an HttpCredentialProvider, or send a fresh token.`,
    );
  }
}

export interface HttpCredentialProviderOptions {
  /** The orchestrator's refresh endpoint (http or https). */
  url: string;
  /** Sent as `Authorization: Bearer …`. */
  token: Secret | string;
  /** Per refresh. Default 10 000 ms. */
  timeoutMs?: number;
  /** For tests. Default: the global fetch. */
  fetch?: typeof fetch;
}

/**
 * POSTs `{ connection_id, refresh_token, scope }` as JSON to the orchestrator and expects
 * `{ access_token, expires_at, refresh_token?, token_type?, scope? }` back (200).
 */
export class HttpCredentialProvider implements CredentialProvider {
  readonly canRefresh = true;
  private readonly url: URL;
  private readonly token: Secret;
  private readonly timeoutMs: number;
  private readonly fetch: typeof fetch;

  constructor(options: HttpCredentialProviderOptions) {
    this.url = new URL(options.url);
    if (this.url.protocol !== 'http:' && this.url.protocol !== 'https:') {
      throw new GrexalError(
        'E_VALIDATION',
        `Credential provider URL must be http(s), not ${this.url.protocol}.`,
      );
    }
    this.token = toSecret(options.token);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  async refresh(
    connectionId: string,
    request: RefreshRequest,
    signal?: AbortSignal,
  ): Promise<RefreshedToken> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const where = `${this.url.origin}${this.url.pathname}`;
    const fail = (why: string, cause?: unknown): GrexalError =>
      new GrexalError(
        'E_CREDENTIAL_REFRESH_FAILED',
        `Refreshing connection ${connectionId} at ${where} failed: ${why}. The user may need to re-authorise it.`,
        cause === undefined ? {} : { cause },
      );
    let response: Response;
    try {
      response = await this.fetch(this.url, {
        method: 'POST',
        headers: { authorization: `Bearer ${this.token.reveal()}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          connection_id: connectionId,
          refresh_token: request.refreshToken.reveal(),
          scope: request.scope,
        }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        redirect: 'error',
      });
    } catch (error) {
      if (timeout.aborted) throw fail(`no answer within ${this.timeoutMs} ms`);
      if (signal?.aborted)
        throw new GrexalError('E_ABORTED', `Refreshing connection ${connectionId} was cancelled.`);
      // A fetch error names the host and the network failure, never the request body.
      throw fail(error instanceof Error ? error.message : 'network error', error);
    }
    // The body may echo tokens: it is parsed, never quoted.
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      throw fail(`the provider answered HTTP ${response.status}`);
    }
    const body: unknown = await response.json().catch(() => undefined);
    const parsed = refreshedTokenSchema.safeParse(body);
    if (!parsed.success) {
      const paths = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))].join(', ');
      throw fail(`the answer is not a token (problems at: ${paths})`);
    }
    return parsed.data;
  }
}
