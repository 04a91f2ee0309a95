/**
 * The shared setup of the credential injection tests (test/credentials-*.test.ts): canary values
 * that must never show up anywhere but inside the agent process, the manifest and credentials that
 * carry them, the agents that report every channel, the places a leak is looked for, and a runner
 * whose every log line (at trace) is kept to be searched.
 *
 * The state below is exported as live bindings, set by the hooks `useCredentialsFixture()`
 * registers in the calling file: every file gets its own runner, state dir and canaries.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { promisify } from 'node:util';
import pino from 'pino';
import { afterAll, beforeAll } from 'vitest';
import { Runner, type SandboxEvent } from '../runner/index.ts';
import { designConnections } from '../runner/inject/testing/design-connections.ts';
import { newStateDir, removeStateDir } from './helpers.ts';

const exec = promisify(execFile);
export const canary = (name: string) => `canary-${name}-${randomBytes(6).toString('hex')}`;

export const CANARY = {
  apiKey: canary('openai'),
  accessKey: canary('aws-access'),
  secretKey: canary('aws-secret'),
  fileKey: canary('gcp-private-key'),
  oauth: canary('oauth-access'),
  refresh: canary('oauth-refresh'),
};
export const ALL = Object.values(CANARY);

export const manifest = {
  connections: [
    ...designConnections(),
    { id: 'slack', mode: 'secret_input', required: false, fields: [{ key: 'token' }] },
  ],
};

export function credentialsFor(c: typeof CANARY, expiresAt = Date.now() + 3_600_000) {
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
export const REPORT_AGENT = `
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
export const PYTHON_AGENT = `
import json
from grexal import ctx
for i in ['openai', 'slack']:
    try:
        print(json.dumps({'channel': 'python', 'id': i, 'hex': json.dumps(ctx.connect(i)).encode().hex()}))
    except ctx.CtxError as e:
        print(json.dumps({'channel': 'python', 'id': i, 'error': e.code}))
`;

export const fromHex = (h: string) => Buffer.from(h, 'hex').toString('utf8');
export const lines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/**
 * Files under `dir` whose bytes contain any of the values. grep exits 2 when a file vanished or
 * could not be read during the walk (containers come and go under the data root); that is no
 * finding, but any other error is, and every match is returned whatever the exit code.
 */
export async function filesContaining(dir: string, values: string[]): Promise<string[]> {
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

export async function hostCommandLines(): Promise<string> {
  const pids = (await readdir('/proc')).filter((p) => /^\d+$/.test(p));
  const lines = await Promise.all(pids.map((p) => readFile(`/proc/${p}/cmdline`, 'utf8').catch(() => '')));
  return lines.join('\n');
}

export let stateDir: string;
export let logLines: string;
export let runner: Runner;

/** Registers the calling file's hooks: its own state dir and runner, closed after its tests. */
export function useCredentialsFixture(): void {
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
}

export async function runAgent(options: Record<string, unknown>) {
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
