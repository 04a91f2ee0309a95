import { extract } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { GrexalError } from '../errors.ts';
import type { CredentialProvider, RefreshedToken, RefreshRequest } from './credential-provider.ts';
import { CtxError } from './ctx-error.ts';
import { type InjectEvent, prepareInjection } from './injection.ts';
import { MASK } from './masker.ts';

const OPENAI = 'sk-openai-canary-0001';
const AWS_SECRET = 'aws-secret-canary-0002';
const ACCESS = 'ya29.access-canary-0003';
const REFRESH = '1//refresh-canary-0004';
const SA = '{"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\\nMIIEcanary0005\\n"}\n';

const manifest = {
  connections: [
    {
      id: 'openai',
      mode: 'secret_input',
      label: 'OpenAI API key',
      fields: [{ key: 'api_key' }],
      env: { OPENAI_API_KEY: 'api_key' },
    },
    {
      id: 'aws',
      mode: 'secret_input',
      fields: [{ key: 'access_key' }, { key: 'secret_key' }, { key: 'region', secret: false }],
      env: {
        AWS_ACCESS_KEY_ID: 'access_key',
        AWS_SECRET_ACCESS_KEY: 'secret_key',
        AWS_SHARED_CREDENTIALS_FILE: 'file:credentials.json',
      },
      file: 'credentials.json',
    },
    { id: 'gmail', mode: 'oauth_redirect', provider: 'google', scopes: ['gmail.readonly'] },
    {
      id: 'gcp',
      mode: 'file_upload',
      files: [{ name: 'service-account.json' }],
      env: { GOOGLE_APPLICATION_CREDENTIALS: 'file:service-account.json' },
    },
    { id: 'linkedin', mode: 'browser_login', label: 'LinkedIn' },
    {
      id: 'slack',
      mode: 'secret_input',
      required: false,
      fields: [{ key: 'token' }],
      env: { SLACK_TOKEN: 'token' },
    },
  ],
};

/** `null`: a token without expiry. */
function credentials(expiresAt: number | null = Date.now() + 3_600_000) {
  return {
    openai: { fields: { api_key: OPENAI } },
    aws: { fields: { access_key: 'AKIACANARY000006', secret_key: AWS_SECRET, region: 'eu-west-1' } },
    gmail: {
      access_token: ACCESS,
      refresh_token: REFRESH,
      scope: 'gmail.readonly',
      ...(expiresAt === null ? {} : { expires_at: expiresAt }),
    },
    gcp: { files: { 'service-account.json': { base64: Buffer.from(SA).toString('base64') } } },
  };
}

async function untar(
  tar: Buffer,
): Promise<Record<string, { mode: number | undefined; type: string | null | undefined; content: string }>> {
  const out: Record<string, { mode: number | undefined; type: string | null | undefined; content: string }> =
    {};
  const ex = extract();
  const done = (async () => {
    for await (const entry of ex) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      out[entry.header.name] = {
        mode: entry.header.mode,
        type: entry.header.type,
        content: Buffer.concat(chunks).toString(),
      };
    }
  })();
  ex.end(tar);
  await done;
  return out;
}

/** A provider that counts calls and answers what the test says. */
class FakeProvider implements CredentialProvider {
  readonly canRefresh = true;
  calls: { connectionId: string; refreshToken: string; scope: string | null }[] = [];
  release: () => void = () => {};
  private gate = new Promise<void>((resolve) => {
    this.release = resolve;
  });
  constructor(private readonly answer: () => RefreshedToken | Promise<RefreshedToken>) {}
  async refresh(connectionId: string, request: RefreshRequest): Promise<RefreshedToken> {
    this.calls.push({ connectionId, refreshToken: request.refreshToken.reveal(), scope: request.scope });
    await this.gate;
    return this.answer();
  }
}

async function ctxCode(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(CtxError);
    return (error as CtxError).code;
  }
  throw new Error('expected a CtxError');
}

describe('prepareInjection: channels', () => {
  it('builds the env from fields and file paths, and leaves out non-mapped and absent connections', async () => {
    const injection = await prepareInjection({ manifest, credentials: credentials() });
    expect(injection.env).toEqual({
      OPENAI_API_KEY: OPENAI,
      AWS_ACCESS_KEY_ID: 'AKIACANARY000006',
      AWS_SECRET_ACCESS_KEY: AWS_SECRET,
      AWS_SHARED_CREDENTIALS_FILE: '/tmp/grexal/aws/credentials.json',
      GOOGLE_APPLICATION_CREDENTIALS: '/tmp/grexal/gcp/service-account.json',
    });
  });

  it('packs file_upload files and a secret_input file as plain 0400 entries', async () => {
    const injection = await prepareInjection({ manifest, credentials: credentials() });
    const entries = await untar(injection.filesTar!);
    expect(Object.keys(entries).sort()).toEqual(['aws/credentials.json', 'gcp/service-account.json']);
    expect(entries['gcp/service-account.json']).toEqual({ mode: 0o400, type: 'file', content: SA });
    expect(JSON.parse(entries['aws/credentials.json']!.content)).toEqual({
      access_key: 'AKIACANARY000006',
      secret_key: AWS_SECRET,
      region: 'eu-west-1',
    });
  });

  it('has no tar when there are no files', async () => {
    const injection = await prepareInjection({
      manifest: { connections: [manifest.connections[0]] },
      credentials: { openai: credentials().openai },
    });
    expect(injection.filesTar).toBeUndefined();
  });

  it('masks every secret, its encodings and file lines, but not non-secret fields', async () => {
    const injection = await prepareInjection({ manifest, credentials: credentials() });
    const text = [
      OPENAI,
      AWS_SECRET,
      ACCESS,
      REFRESH,
      Buffer.from(OPENAI).toString('base64'),
      encodeURIComponent(REFRESH),
      'MIIEcanary0005',
      'eu-west-1',
    ].join(' ');
    expect(injection.mask(text)).toBe(`${Array(7).fill(MASK).join(' ')} eu-west-1`);
  });

  it('refuses bad input before preparing anything', async () => {
    await expect(
      prepareInjection({ manifest, credentials: { ...credentials(), openai: undefined } }),
    ).rejects.toMatchObject({
      code: 'E_MISSING_CREDENTIALS',
    });
    await expect(
      prepareInjection({
        manifest: { connections: [{ id: '../x', mode: 'browser_login' }] },
        credentials: {},
      }),
    ).rejects.toMatchObject({
      code: 'E_VALIDATION',
    });
  });
});

describe('prepareInjection: connect', () => {
  it('answers each mode exactly as the protocol says, and audits without values', async () => {
    const events: InjectEvent[] = [];
    const injection = await prepareInjection({
      manifest,
      credentials: credentials(),
      onEvent: (e) => events.push(e),
    });
    expect(await injection.connect('openai')).toEqual({ mode: 'secret_input', fields: { api_key: OPENAI } });
    expect(await injection.connect('aws')).toEqual({
      mode: 'secret_input',
      fields: { access_key: 'AKIACANARY000006', secret_key: AWS_SECRET, region: 'eu-west-1' },
    });
    const gmail = await injection.connect('gmail');
    expect(gmail).toEqual({
      mode: 'oauth_redirect',
      access_token: ACCESS,
      token_type: 'Bearer',
      expires_at: expect.any(Number),
      scope: 'gmail.readonly',
    });
    expect(await injection.connect('gcp')).toEqual({
      mode: 'file_upload',
      dir: '/tmp/grexal/gcp',
      files: { 'service-account.json': '/tmp/grexal/gcp/service-account.json' },
    });
    expect(await injection.connect('linkedin')).toEqual({ mode: 'browser_login' });
    expect(events.map((e) => [e.type, e.connectionId, 'mode' in e ? e.mode : ''])).toEqual([
      ['connect', 'openai', 'secret_input'],
      ['connect', 'aws', 'secret_input'],
      ['connect', 'gmail', 'oauth_redirect'],
      ['connect', 'gcp', 'file_upload'],
      ['connect', 'linkedin', 'browser_login'],
    ]);
    expect(JSON.stringify(events)).not.toMatch(/canary/);
  });

  it('answers not_declared for an unknown id and not_connected for an absent optional one', async () => {
    const events: InjectEvent[] = [];
    const injection = await prepareInjection({
      manifest,
      credentials: credentials(),
      onEvent: (e) => events.push(e),
    });
    expect(await ctxCode(injection.connect('github'))).toBe('not_declared');
    expect(await ctxCode(injection.connect('../openai'))).toBe('not_declared');
    expect(await ctxCode(injection.connect('slack'))).toBe('not_connected');
    expect(events).toEqual([]);
  });

  it('gives labels for takeover prompts', async () => {
    const injection = await prepareInjection({ manifest, credentials: credentials() });
    expect(injection.connectionLabel('linkedin')).toBe('LinkedIn');
    expect(injection.connectionLabel('gmail')).toBeUndefined();
    expect(injection.connectionLabel('nope')).toBeUndefined();
  });

  it('drops credentials on dispose', async () => {
    const injection = await prepareInjection({ manifest, credentials: credentials() });
    const tar = injection.filesTar!;
    injection.dispose();
    expect(await ctxCode(injection.connect('openai'))).toBe('broken');
    expect(await ctxCode(injection.connect('gmail'))).toBe('broken');
    expect(injection.env).toEqual({});
    expect(tar.every((b) => b === 0)).toBe(true);
    expect(injection.mask(OPENAI)).toBe(MASK);
  });
});

describe('prepareInjection: OAuth refresh', () => {
  const NEW = 'ya29.refreshed-canary-0007';

  it('refreshes a near-expiry token once for 50 concurrent connects', async () => {
    const provider = new FakeProvider(() => ({
      access_token: NEW,
      expires_at: Date.now() + 3_600_000,
      refresh_token: '1//rotated-canary-8',
    }));
    const injection = await prepareInjection({
      manifest,
      credentials: credentials(Date.now() + 30_000),
      provider,
    });
    const calls = Array.from({ length: 50 }, () => injection.connect('gmail'));
    await new Promise((resolve) => setImmediate(resolve));
    provider.release();
    const results = await Promise.all(calls);
    expect(provider.calls).toEqual([
      { connectionId: 'gmail', refreshToken: REFRESH, scope: 'gmail.readonly' },
    ]);
    for (const r of results) expect(r).toMatchObject({ mode: 'oauth_redirect', access_token: NEW });
    // Kept for the sandbox's life: no second refresh, and the new values are masked.
    expect(await injection.connect('gmail')).toMatchObject({ access_token: NEW });
    expect(provider.calls).toHaveLength(1);
    expect(injection.mask(`${NEW} 1//rotated-canary-8`)).toBe(`${MASK} ${MASK}`);
  });

  it('does not refresh a token far from expiry, nor one without expiry', async () => {
    const provider = new FakeProvider(() => ({ access_token: NEW, expires_at: null }));
    const injection = await prepareInjection({
      manifest,
      credentials: credentials(Date.now() + 3_600_000),
      provider,
    });
    await injection.connect('gmail');
    const noExpiry = await prepareInjection({ manifest, credentials: credentials(null), provider });
    expect(await noExpiry.connect('gmail')).toMatchObject({ access_token: ACCESS, expires_at: null });
    expect(provider.calls).toHaveLength(0);
  });

  it('honours a custom refresh window', async () => {
    const provider = new FakeProvider(() => ({ access_token: NEW, expires_at: Date.now() + 3_600_000 }));
    provider.release();
    const injection = await prepareInjection({
      manifest,
      credentials: credentials(Date.now() + 30 * 60_000),
      provider,
      refreshWindowMs: 3_600_000,
    });
    expect(await injection.connect('gmail')).toMatchObject({ access_token: NEW });
  });

  it('breaks the connection on a failed refresh: one event, no retry storm, others keep working', async () => {
    const events: InjectEvent[] = [];
    const provider = new FakeProvider(() => {
      throw new GrexalError('E_CREDENTIAL_REFRESH_FAILED', `provider said no to ${REFRESH}`);
    });
    const injection = await prepareInjection({
      manifest,
      credentials: credentials(Date.now() + 10_000),
      provider,
      reconnectTimeoutMs: 0,
      onEvent: (e) => events.push(e),
    });
    const calls = Array.from({ length: 20 }, () => ctxCode(injection.connect('gmail')));
    provider.release();
    expect(new Set(await Promise.all(calls))).toEqual(new Set(['broken']));
    for (let i = 0; i < 10; i++) expect(await ctxCode(injection.connect('gmail'))).toBe('broken');
    expect(provider.calls).toHaveLength(1);
    const broken = events.filter((e) => e.type === 'connection.broken');
    expect(broken).toEqual([
      {
        type: 'connection.broken',
        connectionId: 'gmail',
        reason: expect.any(String),
        at: expect.any(Number),
      },
    ]);
    expect(JSON.stringify(broken)).not.toContain('canary');
    expect(await injection.connect('openai')).toMatchObject({ mode: 'secret_input' });
  });

  it('breaks on an answer that is not a token', async () => {
    const provider = new FakeProvider(
      () => ({ access_token: 'short', expires_at: Date.now() + 1000 }) as RefreshedToken,
    );
    provider.release();
    const injection = await prepareInjection({
      manifest,
      credentials: credentials(Date.now() + 10_000),
      provider,
    });
    expect(await ctxCode(injection.connect('gmail', { wait: false }))).toBe('broken');
  });

  it('with no provider, uses a near-expiry token until it expires, then answers broken', async () => {
    const events: InjectEvent[] = [];
    const near = await prepareInjection({ manifest, credentials: credentials(Date.now() + 30_000) });
    expect(await near.connect('gmail')).toMatchObject({ access_token: ACCESS });
    const expired = await prepareInjection({
      manifest,
      credentials: credentials(Date.now() - 1000),
      reconnectTimeoutMs: 0,
      onEvent: (e) => events.push(e),
    });
    expect(await ctxCode(expired.connect('gmail'))).toBe('broken');
    expect(await ctxCode(expired.connect('gmail'))).toBe('broken');
    expect(events.filter((e) => e.type === 'connection.broken')).toHaveLength(1);
  });

  it('lets one waiter give up without cancelling the refresh for the others', async () => {
    const provider = new FakeProvider(() => ({ access_token: NEW, expires_at: Date.now() + 3_600_000 }));
    const injection = await prepareInjection({
      manifest,
      credentials: credentials(Date.now() + 30_000),
      provider,
    });
    const quitter = new AbortController();
    const gaveUp = injection.connect('gmail', { signal: quitter.signal });
    const waiter = injection.connect('gmail');
    quitter.abort(new Error('client went away'));
    await expect(gaveUp).rejects.toThrow('client went away');
    provider.release();
    expect(await waiter).toMatchObject({ access_token: NEW });
    expect(provider.calls).toHaveLength(1);
  });
});
