/**
 * Connections that live with the run, through `grexal serve` and the real engine: a broken OAuth
 * connection re-authorised while the agent waits (and the deadline, and `wait: false`), a file
 * rotated while the agent reads it in a tight loop, a rotation the sandbox cannot take, removal of
 * optional and required connections, and refused changes. Every new value is a canary that must
 * appear nowhere but inside the agent: not in inspect, the runner's logs, the events, the state dir.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { StreamEvent } from '../runner/index.ts';
import { docker, eventually, sandboxContainers } from './helpers.ts';
import { useServedRunner } from './served-runner.ts';

const exec = promisify(execFile);
const TOKEN = 'live-connections-test-token-7c1d';
const IMAGE = 'grexal/agent';
const canary = (name: string) => `canary-${name}-${randomBytes(6).toString('hex')}`;
const hexOf = (text: string) => Buffer.from(text).toString('hex');
const b64 = (text: string) => Buffer.from(text).toString('base64');

let logLines = '';
/** Every runner and API log line at trace, for the no-leak checks. */
function testLogger() {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logLines += chunk.toString();
      done();
    },
  });
  return pino({ level: 'trace' }, sink);
}
const served = useServedRunner({ token: TOKEN, logger: testLogger });

/** Files under `dir` whose bytes contain any of the values. */
async function filesContaining(dir: string, values: string[]): Promise<string[]> {
  const args = ['-rlF', ...values.flatMap((v) => ['-e', v]), dir];
  const { stdout } = await exec('grep', args, { maxBuffer: 1 << 24 }).catch(
    (e: { stdout?: string; code?: number }) => (e.code === 1 ? { stdout: '' } : Promise.reject(e)),
  );
  return stdout.split('\n').filter(Boolean);
}

async function inspectOf(id: string): Promise<string> {
  const [container] = await sandboxContainers(id);
  return container ? JSON.stringify(await docker.getContainer(container.Id).inspect()) : '';
}

/** Creates a sandbox and collects its events until `exit`. */
async function start(body: Record<string, unknown>) {
  const { id } = await served.client.create({ image: IMAGE, ...body } as never);
  served.created.push(id);
  const events: StreamEvent[] = [];
  const ended = (async () => {
    for await (const event of served.client.events(id)) events.push(event);
  })();
  return { id, events, ended };
}

const stdoutOf = (events: StreamEvent[]) =>
  events
    .filter((e) => e.type === 'log' && e.stream === 'stdout')
    .map((e) => (e as { text: string }).text)
    .join('');
const reports = (events: StreamEvent[]) =>
  stdoutOf(events)
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
/** The types of the events, with states as `state:<name>`, logs left out. */
const timeline = (events: StreamEvent[]) =>
  events
    .filter((e) => e.type !== 'log' && e.type !== 'connect')
    .map((e) => (e.type === 'state' ? `state:${(e as { state: string }).state}` : e.type));

/** Retries while the agent has not started yet (409 E_SANDBOX_STARTING), bounded. */
async function whenStarted<T>(call: () => Promise<T>): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await call();
    } catch (error) {
      if ((error as { code?: string }).code !== 'E_SANDBOX_STARTING' || i >= 200) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

/** No value anywhere outside the agent: inspect (taken while it ran), logs, events, the state dir. */
async function expectNoLeak(values: string[], inspect: string, events: StreamEvent[]) {
  expect(inspect).not.toBe('');
  for (const value of values) {
    expect(inspect).not.toContain(value);
    expect(logLines).not.toContain(value);
    expect(JSON.stringify(events)).not.toContain(value);
  }
  expect(await filesContaining(served.stateDir, values)).toEqual([]);
}

const gmailManifest = (extra: Record<string, unknown> = {}) => ({
  connections: [{ id: 'gmail', mode: 'oauth_redirect', provider: 'google', ...extra }],
});
/** Expired, and no credential provider: the first connect breaks the connection. */
const expiredGmail = () => ({
  gmail: { access_token: canary('old-oauth'), expires_at: Date.now() - 60_000 },
});

describe('re-authorising a broken connection', { timeout: 120_000 }, () => {
  it('makes connect wait until the orchestrator PUTs a new token, then resolves with it', async () => {
    const fresh = canary('new-oauth');
    const agent = `
      import { ctx } from '/opt/grexal/ctx.mjs';
      const { access_token } = await ctx.connect('gmail');
      console.log(JSON.stringify({ js: Buffer.from(access_token).toString('hex') }));
      console.log('raw:' + access_token);
    `;
    const python = `from grexal import ctx; import json; print(json.dumps({'py': ctx.connect('gmail')['access_token'].encode().hex()}))`;
    const run = await start({
      command: ['sh', '-c', 'node --input-type=module -e "$0" && python3 -c "$1"', agent, python],
      manifest: gmailManifest(),
      credentials: expiredGmail(),
    });
    await eventually(
      async () => (await served.client.get(run.id)).state === 'awaiting_credentials',
      'awaiting_credentials',
    );
    const inspect = await inspectOf(run.id);
    const changed = await served.client.reauthorise(run.id, 'gmail', {
      access_token: fresh,
      expires_at: Date.now() + 3_600_000,
    });
    expect(changed).toEqual({ connectionId: 'gmail', outcome: 'restored' });
    await run.ended;
    expect(reports(run.events)).toEqual([{ js: hexOf(fresh) }, { py: hexOf(fresh) }]);
    expect(stdoutOf(run.events)).toContain('raw:***');
    expect(timeline(run.events)).toEqual([
      'state:starting',
      'claimed',
      'state:running',
      'connection.broken',
      'state:awaiting_credentials',
      'connection.restored',
      'state:running',
      'state:exited',
      'exit',
    ]);
    expect(run.events.at(-1)).toMatchObject({ type: 'exit', exitCode: 0 });
    await expectNoLeak([fresh], inspect, run.events);
  });

  it('answers broken once the reconnect timeout passes without a new token', async () => {
    const agent = `
      import { ctx } from '/opt/grexal/ctx.mjs';
      try { await ctx.connect('gmail'); console.log(JSON.stringify({ code: 'none' })); }
      catch (e) { console.log(JSON.stringify({ code: e.code })); }
    `;
    const run = await start({
      command: ['node', '--input-type=module', '-e', agent],
      manifest: gmailManifest({ reconnectTimeoutMs: 600_000 }),
      credentials: expiredGmail(),
      // The orchestrator's override wins over the manifest's ten minutes.
      reconnectTimeoutMs: 1_500,
    });
    await run.ended;
    expect(reports(run.events)).toEqual([{ code: 'broken' }]);
    expect(timeline(run.events)).toEqual([
      'state:starting',
      'claimed',
      'state:running',
      'connection.broken',
      'state:awaiting_credentials',
      'state:running',
      'state:exited',
      'exit',
    ]);
  });

  it('answers a waiting connect with broken when the sandbox is deleted, within the stop grace', async () => {
    const agent = `
      import { ctx } from '/opt/grexal/ctx.mjs';
      process.on('SIGTERM', () => {}); // Heard, so that the answer below can still be printed.
      try { await ctx.connect('gmail'); console.log(JSON.stringify({ code: 'none' })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }
    `;
    const run = await start({
      command: ['node', '--input-type=module', '-e', agent],
      manifest: gmailManifest(),
      credentials: expiredGmail(),
    });
    await eventually(
      async () => (await served.client.get(run.id)).state === 'awaiting_credentials',
      'awaiting_credentials',
    );
    await served.client.delete(run.id);
    await run.ended;
    expect(reports(run.events)).toEqual([
      { code: 'broken', message: expect.stringMatching(/sandbox is ending/) },
    ]);
    expect(run.events.at(-1)).toMatchObject({ type: 'exit', reason: 'destroyed' });
  });

  it('answers broken at once to wait: false, in both clients', async () => {
    const agent = `
      import { ctx } from '/opt/grexal/ctx.mjs';
      try { await ctx.connect('gmail', { wait: false }); } catch (e) { console.log(JSON.stringify({ js: e.code })); }
    `;
    const python = `from grexal import ctx, CtxError
try:
    ctx.connect('gmail', wait=False)
except CtxError as e:
    print('{"py": "%s"}' % e.code)`;
    // Default reconnect timeout (ten minutes): a call that waited would outlive the test.
    const run = await start({
      command: ['sh', '-c', 'node --input-type=module -e "$0" && python3 -c "$1"', agent, python],
      manifest: gmailManifest(),
      credentials: expiredGmail(),
    });
    await run.ended;
    expect(reports(run.events)).toEqual([{ js: 'broken' }, { py: 'broken' }]);
    expect(timeline(run.events)).not.toContain('state:awaiting_credentials');
  });
});

describe('rotating and removing connections', { timeout: 120_000 }, () => {
  it('replaces files while the agent reads them in a tight loop: never partial or missing', async () => {
    const keys = [
      canary('file-0'),
      canary('file-1'),
      canary('file-2'),
      canary('file-3'),
      canary('final-file'),
    ];
    // Big enough (600 kB) that a reader would catch a file rewritten in place or unlinked first;
    // the small one carries the secret the masker must know (files over 64 KiB are not learned).
    const SIZE = 600_000;
    const big = (key: string) => `${key}${'x'.repeat(SIZE - key.length - 1)}$`;
    const files = (key: string) => ({
      'sa.json': { base64: b64(JSON.stringify({ private_key: key })) },
      'big.bin': { base64: b64(big(key)) },
    });
    const agent = `
      import { readFileSync, statSync } from 'node:fs';
      const dir = '/tmp/grexal/gcp/';
      let reads = 0, bad = 0, after = 0;
      const seen = new Set();
      const until = Date.now() + 60_000;
      while (Date.now() < until && after < 300) {
        let text;
        try { text = readFileSync(dir + 'big.bin', 'latin1'); } catch { bad++; continue; }
        reads++;
        if (text.length !== ${SIZE} || !text.endsWith('$')) { bad++; continue; }
        const key = text.slice(0, text.indexOf('x'));
        seen.add(key);
        if (key.includes('-final-file-')) after++;
      }
      const s = statSync(dir + 'big.bin');
      const key = JSON.parse(readFileSync(dir + 'sa.json', 'utf8')).private_key;
      console.log(JSON.stringify({ reads, bad, seen: seen.size, key: Buffer.from(key).toString('hex'), mode: (s.mode & 0o777).toString(8), uid: s.uid }));
      console.log('raw:' + key);
    `;
    const run = await start({
      command: ['node', '--input-type=module', '-e', agent],
      manifest: {
        connections: [{ id: 'gcp', mode: 'file_upload', files: [{ name: 'sa.json' }, { name: 'big.bin' }] }],
      },
      credentials: { gcp: { files: files(keys[0]!) } },
    });
    await eventually(async () => (await served.client.get(run.id)).state === 'running', 'running');
    const inspect = await inspectOf(run.id);
    for (const key of keys.slice(1)) {
      const changed = await whenStarted(() =>
        served.client.rotateCredential(run.id, 'gcp', { files: files(key) }),
      );
      expect(changed.outcome).toBe('updated');
      // The reader gets a moment with each content.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await run.ended;
    const [report] = reports(run.events);
    expect(report).toMatchObject({ bad: 0, key: hexOf(keys.at(-1)!), mode: '400', uid: 1000 });
    expect(report!['seen']).toBeGreaterThanOrEqual(3);
    expect(stdoutOf(run.events)).toContain('raw:***');
    expect(run.events.filter((e) => e.type === 'connection.updated')).toHaveLength(keys.length - 1);
    await expectNoLeak(keys.slice(1), inspect, run.events);
  });

  it('keeps the old files when the sandbox cannot write the new ones, and removes connections', async () => {
    const oldKey = canary('kept-file');
    const newKey = canary('refused-file');
    const signal = canary('signal');
    // Fills /tmp/grexal (16 MiB), waits for the orchestrator's signal (a rotated `go`), reports the
    // file, frees the space, then watches the removals.
    const agent = `
      import { ctx } from '/opt/grexal/ctx.mjs';
      import { existsSync, readFileSync, unlinkSync, writeSync, openSync, closeSync } from 'node:fs';
      const out = (o) => console.log(JSON.stringify(o));
      const fd = openSync('/tmp/grexal/junk', 'w');
      const block = Buffer.alloc(65536, 1);
      try { for (;;) writeSync(fd, block); } catch (e) { out({ full: e.code }); }
      closeSync(fd);
      const first = (await ctx.connect('go')).fields.value;
      const poll = async (check) => { for (let i = 0; i < 600; i++) { if (await check()) return true; await new Promise((r) => setTimeout(r, 100)); } return false; };
      await poll(async () => (await ctx.connect('go')).fields.value !== first);
      out({ file: Buffer.from(readFileSync('/tmp/grexal/gcp/sa.json', 'utf8')).toString('hex') });
      unlinkSync('/tmp/grexal/junk');
      const code = async (id) => { try { await ctx.connect(id, { wait: false }); return 'ok'; } catch (e) { return e.code; } };
      out({ optional: await poll(async () => (await code('gcp')) === 'not_connected'), files: existsSync('/tmp/grexal/gcp') });
      out({ required: await poll(async () => (await code('openai')) === 'revoked'), files: existsSync('/tmp/grexal/openai') });
    `;
    const run = await start({
      command: ['node', '--input-type=module', '-e', agent],
      manifest: {
        connections: [
          { id: 'gcp', mode: 'file_upload', required: false, files: [{ name: 'sa.json' }] },
          { id: 'openai', mode: 'secret_input', fields: [{ key: 'api_key' }], file: 'key.json' },
          { id: 'go', mode: 'secret_input', fields: [{ key: 'value' }] },
          { id: 'linkedin', mode: 'browser_login' },
        ],
      },
      credentials: {
        gcp: { files: { 'sa.json': { base64: b64(oldKey) } } },
        openai: { fields: { api_key: canary('openai') } },
        go: { fields: { value: 'signal-before' } },
      },
    });
    await eventually(async () => stdoutOf(run.events).includes('"full"'), 'the agent filled /tmp/grexal');
    const inspect = await inspectOf(run.id);
    const refused = await served.client
      .rotateCredential(run.id, 'gcp', { files: { 'sa.json': { base64: b64(newKey.repeat(4096)) } } })
      .catch((error: unknown) => error);
    expect(refused).toMatchObject({ code: 'E_CREDENTIAL_DELIVERY_FAILED', status: 502 });

    // Refused before the sandbox is asked: each with its code, its path and a fix.
    const problem = async (connectionId: string, body: unknown) => {
      const error = (await served.client
        .rotateCredential(run.id, connectionId, body as never)
        .catch((e: unknown) => e)) as {
        code: string;
        details: { code: string; path: string; fix?: string }[];
      };
      expect(error.code).toBe('E_VALIDATION');
      return error.details.map((d) => `${d.code}@${d.path}${d.fix ? '' : ' (no fix)'}`);
    };
    expect(await problem('github', { fields: { api_key: newKey } })).toEqual([
      'E_CREDENTIAL_UNDECLARED@connectionId',
    ]);
    expect(await problem('linkedin', {})).toEqual(['E_CONNECTION_NOT_UPDATABLE@connectionId']);
    expect(await problem('gcp', { access_token: newKey })).toEqual(['E_CREDENTIAL_MODE_MISMATCH@']);
    expect(await problem('openai', { fields: { api_key: 'short' } })).toEqual([
      'E_SECRET_TOO_SHORT@fields.api_key',
    ]);

    await served.client.rotateCredential(run.id, 'go', { fields: { value: signal } });
    await eventually(async () => stdoutOf(run.events).includes('"file"'), 'the agent read the file');
    await served.client.removeCredential(run.id, 'gcp');
    await served.client.removeCredential(run.id, 'gcp');
    await served.client.removeCredential(run.id, 'openai');
    await run.ended;
    expect(reports(run.events)).toEqual([
      { full: 'ENOSPC' },
      { file: hexOf(oldKey) },
      { optional: true, files: false },
      { required: true, files: false },
    ]);
    const revoked = run.events.filter((e) => e.type === 'connection.revoked');
    expect(
      revoked.map((e) => [
        (e as { connectionId: string }).connectionId,
        (e as { required: boolean }).required,
      ]),
    ).toEqual([
      ['gcp', false],
      ['openai', true],
    ]);
    expect(run.events.at(-1)).toMatchObject({ type: 'exit', exitCode: 0 });
    // The sandbox has ended: no change is taken any more.
    await expect(
      served.client.rotateCredential(run.id, 'go', { fields: { value: signal } }),
    ).rejects.toMatchObject({
      code: 'E_SANDBOX_ENDED',
      status: 409,
    });
    await expectNoLeak([newKey, signal], inspect, run.events);
  });
});
