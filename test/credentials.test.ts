/**
 * Credential injection against the real engine: every channel end to end, and canary values that
 * must never show up anywhere but inside the agent process.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Runner, type Sandbox, type SandboxEvent } from '../runner/index.ts';
import type { CredentialProvider, RefreshedToken } from '../runner/inject/index.ts';
import { designConnections } from '../runner/inject/testing/design-connections.ts';
import { docker, newStateDir, removeStateDir, runCli, sandboxContainers } from './helpers.ts';

const exec = promisify(execFile);
const canary = (name: string) => `canary-${name}-${randomBytes(6).toString('hex')}`;

const CANARY = {
  apiKey: canary('openai'),
  accessKey: canary('aws-access'),
  secretKey: canary('aws-secret'),
  fileKey: canary('gcp-private-key'),
  oauth: canary('oauth-access'),
  refresh: canary('oauth-refresh'),
};
const ALL = Object.values(CANARY);

const manifest = {
  connections: [
    ...designConnections(),
    { id: 'slack', mode: 'secret_input', required: false, fields: [{ key: 'token' }] },
  ],
};

function credentialsFor(c: typeof CANARY, expiresAt = Date.now() + 3_600_000) {
  return {
    openai: { fields: { api_key: c.apiKey } },
    aws: { fields: { access_key: c.accessKey, secret_key: c.secretKey, region: 'eu-west-1' } },
    gmail: {
      access_token: c.oauth,
      refresh_token: c.refresh,
      expires_at: expiresAt,
      scope: 'gmail.readonly',
    },
    gcp: {
      files: {
        'service-account.json': {
          base64: Buffer.from(JSON.stringify({ private_key: c.fileKey })).toString('base64'),
        },
      },
    },
  };
}

/** The agent: reports every channel as JSON lines on stdout, through the JS and Python clients. */
const REPORT_AGENT = `
import { ctx } from '/opt/grexal/ctx.mjs';
import { readFileSync, statSync } from 'node:fs';
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
const hex = (s) => Buffer.from(s).toString('hex');
out({ channel: 'env', values: ['OPENAI_API_KEY', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'GOOGLE_APPLICATION_CREDENTIALS'].map((k) => hex(process.env[k] ?? '')) });
out({ channel: 'pid1', hex: hex(readFileSync('/proc/1/environ', 'utf8')) });
for (const f of ['/tmp/grexal/gcp/service-account.json', '/tmp/grexal/aws/credentials.json']) {
  const s = statSync(f);
  out({ channel: 'file', path: f, mode: (s.mode & 0o777).toString(8), uid: s.uid, hex: hex(readFileSync(f, 'utf8')) });
}
out({ channel: 'mounts', line: readFileSync('/proc/mounts', 'utf8').split('\\n').find((l) => l.includes(' /tmp/grexal ')) });
for (const id of ['openai', 'aws', 'gmail', 'gcp', 'slack', 'undeclared']) {
  try { out({ channel: 'connect', id, hex: hex(JSON.stringify(await ctx.connect(id))) }); }
  catch (e) { out({ channel: 'connect', id, error: e.code }); }
}
`;
const PYTHON_AGENT = `
import json
from grexal import ctx
for i in ['openai', 'slack']:
    try:
        print(json.dumps({'channel': 'python', 'id': i, 'hex': json.dumps(ctx.connect(i)).encode().hex()}))
    except ctx.CtxError as e:
        print(json.dumps({'channel': 'python', 'id': i, 'error': e.code}))
`;

const fromHex = (h: string) => Buffer.from(h, 'hex').toString('utf8');
const lines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/**
 * Files under `dir` whose bytes contain any of the values. grep exits 2 when a file vanished or
 * could not be read during the walk (containers come and go under the data root); that is no
 * finding, but any other error is, and every match is returned whatever the exit code.
 */
async function filesContaining(dir: string, values: string[]): Promise<string[]> {
  const args = ['-rlF', '--devices=skip', ...values.flatMap((v) => ['-e', v]), dir];
  const { stdout } = await exec('grep', args, { maxBuffer: 1 << 24 }).catch(
    (e: { stdout?: string; stderr?: string; code?: number }) => {
      const errors = (e.stderr ?? '').split('\n').filter(Boolean);
      const vanished = errors.every((line) =>
        /No such file or directory|No such device or address/.test(line),
      );
      return e.code === 1 || (e.code === 2 && vanished) ? { stdout: e.stdout ?? '' } : Promise.reject(e);
    },
  );
  return stdout.split('\n').filter(Boolean);
}

async function hostCommandLines(): Promise<string> {
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  const lines = await Promise.all(pids.map((p) => readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
  return lines.join('\n');
}

let stateDir: string;
let logLines: string;
let runner: Runner;

beforeAll(async () => {
  stateDir = await newStateDir();
  logLines = '';
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines += chunk.toString();
      done();
    },
  });
  runner = await Runner.start({ stateDir, logger: pino({ level: 'trace' }, sink) });
});
afterAll(async () => {
  await runner.close();
  await removeStateDir(stateDir);
});

async function runAgent(options: Record<string, unknown>) {
  const sandbox = await runner.create({ image: 'grexal/agent', ...options });
  const events: (SandboxEvent & { at: number })[] = [];
  let stdout = '';
  sandbox.onEvent((e) => {
    events.push(e);
    if (e.type === 'log' && e.stream === 'stdout') stdout += e.text;
  });
  await sandbox.start();
  return { sandbox, events, stdout: () => stdout, exit: sandbox.exited };
}

describe('credential injection (library)', () => {
  it('delivers every channel as declared and leaks no canary anywhere else', async () => {
    const run = await runAgent({
      command: [
        'sh',
        '-c',
        `node --input-type=module -e "$0" && python3 -c "$1"`,
        REPORT_AGENT,
        PYTHON_AGENT,
      ],
      manifest,
      credentials: credentialsFor(CANARY),
    });
    // While it runs: the container's config, the host's process list, the runner's state directory.
    const during = await Promise.all([
      sandboxContainers(run.sandbox.id).then(async ([c]) =>
        c ? JSON.stringify(await docker.getContainer(c.Id).inspect()) : '',
      ),
      hostCommandLines(),
      filesContaining(stateDir, ALL),
    ]);
    const exit = await run.exit;
    expect(exit).toEqual({ exitCode: 0, reason: 'exited', oomKilled: false });
    const report = lines(run.stdout());

    const env = report.find((r) => r['channel'] === 'env')!['values'] as string[];
    expect(env.map(fromHex)).toEqual([
      CANARY.apiKey,
      CANARY.accessKey,
      CANARY.secretKey,
      '/tmp/grexal/gcp/service-account.json',
    ]);
    const pid1 = fromHex(report.find((r) => r['channel'] === 'pid1')!['hex'] as string);
    for (const value of ALL) expect(pid1).not.toContain(value);

    const files = report.filter((r) => r['channel'] === 'file');
    expect(files.map((f) => [f['path'], f['mode'], f['uid']])).toEqual([
      ['/tmp/grexal/gcp/service-account.json', '400', 1000],
      ['/tmp/grexal/aws/credentials.json', '400', 1000],
    ]);
    expect(JSON.parse(fromHex(files[0]!['hex'] as string))).toEqual({ private_key: CANARY.fileKey });
    expect(JSON.parse(fromHex(files[1]!['hex'] as string))).toEqual({
      access_key: CANARY.accessKey,
      secret_key: CANARY.secretKey,
      region: 'eu-west-1',
    });
    expect(report.find((r) => r['channel'] === 'mounts')!['line']).toMatch(
      /^tmpfs \/tmp\/grexal tmpfs rw,nosuid,nodev,noexec/,
    );

    const connect = Object.fromEntries(
      report
        .filter((r) => r['channel'] === 'connect')
        .map((r) => [r['id'], r['error'] ?? JSON.parse(fromHex(r['hex'] as string))]),
    );
    expect(connect['openai']).toEqual({ mode: 'secret_input', fields: { api_key: CANARY.apiKey } });
    expect(connect['gmail']).toMatchObject({
      mode: 'oauth_redirect',
      access_token: CANARY.oauth,
      token_type: 'Bearer',
    });
    expect(connect['gcp']).toEqual({
      mode: 'file_upload',
      dir: '/tmp/grexal/gcp',
      files: { 'service-account.json': '/tmp/grexal/gcp/service-account.json' },
    });
    expect(connect['slack']).toBe('not_connected');
    expect(connect['undeclared']).toBe('not_declared');
    const python = report.filter((r) => r['channel'] === 'python');
    expect(JSON.parse(fromHex(python[0]!['hex'] as string))).toEqual(connect['openai']);
    expect(python[1]!['error']).toBe('not_connected');

    // Audit events name the connection, never a value.
    const audits = run.events.filter((e) => e.type === 'connect');
    expect(audits.map((e) => (e as { connectionId: string }).connectionId).sort()).toEqual([
      'aws',
      'gcp',
      'gmail',
      'openai',
      'openai',
    ]);

    const [inspect, processes, stateFiles] = during;
    const afterwards = await filesContaining(stateDir, ALL);
    const dataRoot = await filesContaining('/var/lib/docker', ALL);
    for (const value of ALL) {
      expect(inspect).not.toContain(value);
      expect(processes).not.toContain(value);
      expect(JSON.stringify(run.events)).not.toContain(value);
      expect(logLines).not.toContain(value);
    }
    expect(inspect).not.toBe('');
    expect(stateFiles).toEqual([]);
    expect(afterwards).toEqual([]);
    expect(dataRoot).toEqual([]);
  });

  it('keeps two concurrent sandboxes to their own credentials on every channel', async () => {
    const other = {
      ...CANARY,
      apiKey: canary('second-openai'),
      fileKey: canary('second-gcp'),
      oauth: canary('second-oauth'),
    };
    const agent = `node --input-type=module -e "$0"`;
    const [a, b] = await Promise.all([
      runAgent({ command: ['sh', '-c', agent, REPORT_AGENT], manifest, credentials: credentialsFor(CANARY) }),
      runAgent({ command: ['sh', '-c', agent, REPORT_AGENT], manifest, credentials: credentialsFor(other) }),
    ]);
    await Promise.all([a.exit, b.exit]);
    const decoded = (out: string) =>
      lines(out)
        .map((r) =>
          [
            r['values'] ? (r['values'] as string[]).map(fromHex).join(' ') : '',
            r['hex'] ? fromHex(r['hex'] as string) : '',
          ].join(' '),
        )
        .join('\n');
    const seenA = decoded(a.stdout());
    const seenB = decoded(b.stdout());
    for (const key of ['apiKey', 'fileKey', 'oauth'] as const) {
      expect(seenA).toContain(CANARY[key]);
      expect(seenA).not.toContain(other[key]);
      expect(seenB).toContain(other[key]);
      expect(seenB).not.toContain(CANARY[key]);
    }
  });

  it('masks every form of a secret the agent prints, split across writes too', async () => {
    const secret = CANARY.apiKey;
    const forms = [
      secret,
      Buffer.from(secret).toString('base64'),
      Buffer.from(`x${secret}`).toString('base64'),
      Buffer.from(`xy${secret}`).toString('base64'),
      encodeURIComponent(`${secret}/+= &`),
      JSON.stringify(`say "${secret}"\n`),
    ];
    const script = `
      const s = process.env.OPENAI_API_KEY;
      const b = (t) => Buffer.from(t).toString('base64');
      const forms = [s, b(s), b('x' + s), b('xy' + s), encodeURIComponent(s + '/+= &'), JSON.stringify('say "' + s + '"\\n')];
      for (const f of forms) process.stdout.write('[' + f + ']\\n');
      const half = s.length >> 1;
      process.stdout.write('split:' + s.slice(0, half));
      setTimeout(() => { process.stdout.write(s.slice(half) + ':end\\n'); process.stderr.write('err:' + s + '\\n'); }, 100);
    `;
    const run = await runAgent({
      command: ['node', '-e', script],
      manifest,
      credentials: credentialsFor(CANARY),
    });
    await run.exit;
    const everything = JSON.stringify(run.events);
    expect(run.stdout()).toContain('split:***:end');
    for (const form of forms) {
      // Each printed form is there, masked: the line exists but holds none of the secret's forms.
      expect(everything).not.toContain(form.slice(1, -1).length >= 8 ? form.slice(1, -1) : form);
    }
    expect(everything).not.toContain(secret);
    expect(everything).toContain('err:***');
  });
});

describe('OAuth refresh', () => {
  class CountingProvider implements CredentialProvider {
    readonly canRefresh = true;
    calls = 0;
    constructor(private readonly answer: () => Promise<RefreshedToken>) {}
    async refresh(): Promise<RefreshedToken> {
      this.calls++;
      return this.answer();
    }
  }

  const CONCURRENT_CONNECTS = `
    import { ctx } from '/opt/grexal/ctx.mjs';
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => ctx.connect('gmail')));
    const tokens = new Set(results.map((r) => r.status === 'fulfilled' ? r.value.access_token : 'error:' + r.reason.code));
    console.log(JSON.stringify([...tokens].map((t) => Buffer.from(t).toString('hex'))));
  `;

  async function runWith(provider: CountingProvider) {
    const oauthRunner = await Runner.start({ stateDir, credentialProvider: provider });
    try {
      const sandbox: Sandbox = await oauthRunner.create({
        image: 'grexal/agent',
        command: ['node', '--input-type=module', '-e', CONCURRENT_CONNECTS],
        manifest,
        // Expires in 10 s: inside the 60 s refresh window.
        credentials: credentialsFor(CANARY, Date.now() + 10_000),
      });
      const events: SandboxEvent[] = [];
      let stdout = '';
      sandbox.onEvent((e) => {
        events.push(e);
        if (e.type === 'log' && e.stream === 'stdout') stdout += e.text;
      });
      await sandbox.start();
      await sandbox.exited;
      const tokens = (JSON.parse(stdout.trim()) as string[]).map(fromHex);
      return { tokens, events };
    } finally {
      await oauthRunner.close();
    }
  }

  it('refreshes a near-expiry token once for 50 concurrent connects', async () => {
    const fresh = canary('refreshed');
    const provider = new CountingProvider(async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return { access_token: fresh, expires_at: Date.now() + 3_600_000 };
    });
    const { tokens } = await runWith(provider);
    expect(provider.calls).toBe(1);
    expect(tokens).toEqual([fresh]);
  });

  it('marks the connection broken after a failed refresh, without retrying', async () => {
    const provider = new CountingProvider(async () => {
      throw new Error('the orchestrator said no');
    });
    const { tokens, events } = await runWith(provider);
    expect(provider.calls).toBe(1);
    expect(tokens).toEqual(['error:broken']);
    expect(events.filter((e) => e.type === 'connection.broken')).toHaveLength(1);
  });
});

describe('credential injection (grexal run)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'grexal-cli-creds-'));
    await writeFile(join(dir, 'grexal.json'), JSON.stringify(manifest));
    await writeFile(join(dir, 'connections.json'), JSON.stringify(credentialsFor(CANARY)));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('injects env, files and ctx answers, and masks the output', async () => {
    const { code, stdout, stderr } = await runCli(
      [
        'run',
        '--manifest',
        join(dir, 'grexal.json'),
        '--connections',
        join(dir, 'connections.json'),
        '--',
        'sh',
        '-c',
        'echo "key=$OPENAI_API_KEY"; test "$OPENAI_API_KEY" = "$0" && echo env-ok; cat /tmp/grexal/gcp/service-account.json; echo; node --input-type=module -e "$1"',
        CANARY.apiKey,
        "import { ctx } from '/opt/grexal/ctx.mjs'; const r = await ctx.connect('gcp'); console.log(r.files['service-account.json']);",
      ],
      { GREXAL_STATE_DIR: stateDir },
    );
    expect(code).toBe(0);
    expect(stdout).toContain('key=***');
    expect(stdout).toContain('env-ok');
    expect(stdout).toContain('/tmp/grexal/gcp/service-account.json');
    for (const value of ALL) {
      expect(stdout).not.toContain(value);
      expect(stderr).not.toContain(value);
    }
  });

  it('refuses a missing required credential, naming it, before anything exists', async () => {
    await writeFile(join(dir, 'partial.json'), JSON.stringify({ aws: credentialsFor(CANARY).aws }));
    const before = (await sandboxContainers()).length;
    const { code, stderr } = await runCli(
      [
        'run',
        '--manifest',
        join(dir, 'grexal.json'),
        '--connections',
        join(dir, 'partial.json'),
        '--',
        'true',
      ],
      { GREXAL_STATE_DIR: stateDir },
    );
    expect(code).toBe(1);
    expect(stderr).toContain('E_MISSING_CREDENTIALS');
    expect(stderr).toMatch(/openai, gmail, gcp/);
    expect((await sandboxContainers()).length).toBe(before);
    expect(stderr).not.toContain(CANARY.accessKey);
  });
});
