/** Credential changes on a prepared injection: re-authorise, rotate, remove, and what they refuse. */
import { describe, expect, it } from 'vitest';
import { GrexalError, ValidationError } from '../errors.ts';
import { type InjectEvent, prepareInjection } from './injection.ts';
import type { LiveFiles } from './live-changes.ts';
import { MASK } from './masker.ts';

const OLD_KEY = 'sk-old-canary-000001';
const NEW_KEY = 'sk-new-canary-000002';
const OLD_TOKEN = 'ya29.old-canary-0003';
const NEW_TOKEN = 'ya29.new-canary-0004';

const manifest = {
  connections: [
    { id: 'openai', mode: 'secret_input', fields: [{ key: 'api_key' }], file: 'key.json' },
    { id: 'gmail', mode: 'oauth_redirect', provider: 'google', reconnectTimeoutMs: 60_000 },
    { id: 'gcp', mode: 'file_upload', required: false, files: [{ name: 'sa.json' }] },
    { id: 'linkedin', mode: 'browser_login' },
  ],
};
const b64 = (text: string) => Buffer.from(text).toString('base64');

/** An expired token with no provider: the first connect breaks the connection. */
async function setUp(options: { reconnectTimeoutMs?: number } = {}) {
  const events: InjectEvent[] = [];
  const waiting: number[] = [];
  const injection = await prepareInjection({
    manifest,
    credentials: {
      openai: { fields: { api_key: OLD_KEY } },
      gmail: { access_token: OLD_TOKEN, expires_at: Date.now() - 1_000 },
      gcp: { files: { 'sa.json': { base64: b64('{"private_key":"old-file-canary-05"}') } } },
    },
    onEvent: (event) => events.push(event),
    ...options,
  });
  injection.onWaiting((n) => waiting.push(n));
  const calls: string[] = [];
  const files: LiveFiles & { fail?: boolean } = {
    replace: async (id, tar) => {
      calls.push(`replace ${id} ${tar.length > 0}`);
      if (files.fail) throw new GrexalError('E_CREDENTIAL_DELIVERY_FAILED', 'the tmpfs is full');
    },
    remove: async (id) => {
      calls.push(`remove ${id}`);
    },
  };
  return { injection, events, waiting, calls, files };
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'resolved',
    (error: { code?: string }) => error.code,
  );
const types = (events: InjectEvent[]) => events.filter((e) => e.type !== 'connect').map((e) => e.type);

describe('re-authorising a broken connection', () => {
  it('makes connect wait for a new credential, which resolves every waiting call', async () => {
    const { injection, events, waiting, files } = await setUp();
    const calls = [injection.connect('gmail'), injection.connect('gmail')];
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(waiting.at(-1)).toBe(2);
    expect(await injection.update('gmail', { access_token: NEW_TOKEN }, files)).toEqual({ restored: true });
    for (const result of await Promise.all(calls)) expect(result).toMatchObject({ access_token: NEW_TOKEN });
    expect(waiting.at(-1)).toBe(0);
    expect(types(events)).toEqual(['connection.broken', 'connection.restored']);
    expect(injection.mask(`${NEW_TOKEN} ${OLD_TOKEN}`)).toBe(`${MASK} ${MASK}`);
  });

  it('answers broken once the reconnect timeout passes, and at once afterwards', async () => {
    const { injection, waiting } = await setUp({ reconnectTimeoutMs: 60 });
    expect(await codeOf(injection.connect('gmail'))).toBe('broken');
    expect(waiting).toEqual([1, 0]);
    expect(await codeOf(injection.connect('gmail'))).toBe('broken');
    expect(waiting).toEqual([1, 0]);
  });

  it('does not wait with wait: false, nor with a timeout of 0', async () => {
    const waited = await setUp();
    expect(await codeOf(waited.injection.connect('gmail', { wait: false }))).toBe('broken');
    expect(waited.waiting).toEqual([]);
    const none = await setUp({ reconnectTimeoutMs: 0 });
    expect(await codeOf(none.injection.connect('gmail'))).toBe('broken');
    expect(none.waiting).toEqual([]);
  });

  it('lets a waiting call go when its client does', async () => {
    const { injection, waiting } = await setUp();
    const gone = new AbortController();
    const call = injection.connect('gmail', { signal: gone.signal });
    await new Promise((resolve) => setTimeout(resolve, 20));
    gone.abort(new Error('client went away'));
    await expect(call).rejects.toThrow('client went away');
    expect(waiting).toEqual([1, 0]);
  });

  it('fails waiting calls with revoked when a required connection is removed', async () => {
    const { injection, events, files } = await setUp();
    const call = codeOf(injection.connect('gmail'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    await injection.remove('gmail', files);
    expect(await call).toBe('revoked');
    expect(types(events)).toEqual(['connection.broken', 'connection.revoked']);
  });

  it('fails waiting calls when the sandbox ends', async () => {
    const { injection } = await setUp();
    const call = codeOf(injection.connect('gmail'));
    await new Promise((resolve) => setTimeout(resolve, 20));
    injection.dispose();
    expect(await call).toBe('broken');
  });
});

describe('rotating a healthy connection', () => {
  it('learns the new value first, writes the files, then answers with it', async () => {
    const { injection, events, calls, files } = await setUp();
    expect(await injection.update('openai', { fields: { api_key: NEW_KEY } }, files)).toEqual({
      restored: false,
    });
    expect(calls).toEqual(['replace openai true']);
    expect(await injection.connect('openai')).toEqual({ mode: 'secret_input', fields: { api_key: NEW_KEY } });
    expect(injection.mask(`${NEW_KEY} ${OLD_KEY}`)).toBe(`${MASK} ${MASK}`);
    expect(types(events)).toEqual(['connection.updated']);
    expect(JSON.stringify(events)).not.toContain('canary');
  });

  it('keeps the old credential when the sandbox cannot take the files', async () => {
    const { injection, events, files } = await setUp();
    files.fail = true;
    await expect(injection.update('openai', { fields: { api_key: NEW_KEY } }, files)).rejects.toMatchObject({
      code: 'E_CREDENTIAL_DELIVERY_FAILED',
    });
    expect(await injection.connect('openai')).toMatchObject({ fields: { api_key: OLD_KEY } });
    expect(types(events)).toEqual([]);
    // Learned all the same: it was on its way into the sandbox.
    expect(injection.mask(NEW_KEY)).toBe(MASK);
  });
});

describe('removing a connection', () => {
  it('answers not_connected for an optional one, removes its files, and is idempotent', async () => {
    const { injection, events, calls, files } = await setUp();
    await injection.remove('gcp', files);
    await injection.remove('gcp', files);
    expect(calls).toEqual(['remove gcp']);
    expect(await codeOf(injection.connect('gcp'))).toBe('not_connected');
    expect(events.filter((e) => e.type === 'connection.revoked')).toEqual([
      { type: 'connection.revoked', connectionId: 'gcp', required: false, at: expect.any(Number) },
    ]);
  });

  it('answers revoked for a required one, once and for all until a new credential', async () => {
    const { injection, events, files } = await setUp();
    await injection.remove('openai', files);
    await injection.remove('openai', files);
    expect(await codeOf(injection.connect('openai'))).toBe('revoked');
    expect(types(events)).toEqual(['connection.revoked']);
    await injection.update('openai', { fields: { api_key: NEW_KEY } }, files);
    expect(await injection.connect('openai')).toMatchObject({ fields: { api_key: NEW_KEY } });
  });
});

describe('refused changes', () => {
  const problemOf = async (promise: Promise<unknown>) => {
    const error = await promise.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ValidationError);
    return (error as ValidationError).problems[0];
  };

  it('name the code, the path and the fix, and change nothing', async () => {
    const { injection, events, calls, files } = await setUp();
    const cases: [string, unknown, string, string][] = [
      ['github', { fields: { api_key: NEW_KEY } }, 'E_CREDENTIAL_UNDECLARED', 'connectionId'],
      ['linkedin', {}, 'E_CONNECTION_NOT_UPDATABLE', 'connectionId'],
      ['openai', { access_token: NEW_TOKEN }, 'E_CREDENTIAL_MODE_MISMATCH', ''],
      ['openai', { fields: { api_key: 'short' } }, 'E_SECRET_TOO_SHORT', 'fields.api_key'],
      ['gcp', { files: { 'sa.json': { base64: '!!' } } }, 'E_FILE_BASE64_INVALID', 'files["sa.json"].base64'],
    ];
    for (const [id, body, code, path] of cases) {
      const problem = await problemOf(injection.update(id, body, files));
      expect(problem).toMatchObject({ code, path, fix: expect.any(String) });
    }
    await expect(problemOf(injection.remove('linkedin', files))).resolves.toMatchObject({
      code: 'E_CONNECTION_NOT_UPDATABLE',
    });
    expect(calls).toEqual([]);
    expect(events).toEqual([]);
    expect(await injection.connect('openai')).toMatchObject({ fields: { api_key: OLD_KEY } });
  });

  it('refuses every change once the sandbox has ended', async () => {
    const { injection, files } = await setUp();
    injection.dispose();
    await expect(injection.update('openai', { fields: { api_key: NEW_KEY } }, files)).rejects.toMatchObject({
      code: 'E_SANDBOX_ENDED',
    });
    await expect(injection.remove('openai', files)).rejects.toMatchObject({ code: 'E_SANDBOX_ENDED' });
  });
});
