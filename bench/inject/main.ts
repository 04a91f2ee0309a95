/**
 * bench/inject: what credential injection adds to a run. `grexal run` of an agent with five
 * connections over all three channels (env vars, files under /tmp/grexal/<id>/, ctx.connect())
 * that reads every env var and file and calls ctx.connect() for each id, against the same run
 * with no manifest, whose agent does the same minus the credential reads. Alternated pairs,
 * median ratio of the times from spawn to exit (and, beside it, to the first output line).
 *
 *   node scripts/run-ts.mjs bench/inject/main.ts [--pairs 10]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { designConnections } from '../../runner/inject/testing/design-connections.ts';
import { alternate, median, ms } from '../lib/stats.ts';
import { timeProcess } from '../lib/timed-process.ts';

const { values } = parseArgs({ options: { pairs: { type: 'string', default: '10' } } });
const PAIRS = Number(values.pairs);
const IMAGE = 'grexal/agent';

const MANIFEST = {
  connections: [
    ...designConnections(),
    {
      id: 'github',
      mode: 'secret_input',
      fields: [{ key: 'token' }],
      env: { GITHUB_TOKEN: 'token' },
      file: 'token.json',
    },
  ],
};
const ENV_NAMES = [
  'OPENAI_API_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'GOOGLE_APPLICATION_CREDENTIALS',
  'GITHUB_TOKEN',
];
const FILES = ['aws/credentials.json', 'gcp/service-account.json', 'github/token.json'].map(
  (f) => `/tmp/grexal/${f}`,
);
const IDS = MANIFEST.connections.map((c) => c.id);

/** Fresh random values: nothing real, and long enough for the masker to accept. */
function credentials() {
  const secret = () => randomBytes(20).toString('hex');
  // About the size of a real service-account key file.
  const keyFile = { type: 'service_account', private_key: secret().repeat(40), client_email: 'b@x.iam' };
  return {
    openai: { fields: { api_key: secret() } },
    aws: { fields: { access_key: secret(), secret_key: secret(), region: 'eu-west-1' } },
    gmail: { access_token: secret(), expires_at: Date.now() + 24 * 3_600_000, scope: 'gmail.readonly' },
    gcp: {
      files: { 'service-account.json': { base64: Buffer.from(JSON.stringify(keyFile)).toString('base64') } },
    },
    github: { fields: { token: secret() } },
  };
}

/**
 * The agent, one script for both variants so the work differs only by injection: both load Node,
 * the ctx client and `fs`; with credentials it also reads every env var and file and calls
 * ctx.connect() once per connection, in turn, as an agent would at start.
 */
function agentScript(withCredentials: boolean): string {
  const reads = withCredentials
    ? `const env = ${JSON.stringify(ENV_NAMES)}.filter((k) => (process.env[k] ?? '').length > 0).length;
const files = ${JSON.stringify(FILES)}.filter((f) => readFileSync(f).length > 0).length;
let connects = 0;
for (const id of ${JSON.stringify(IDS)}) if (await ctx.connect(id)) connects++;`
    : 'const env = 0, files = 0, connects = 0; void ctx; void readFileSync;';
  return `import { ctx } from '/opt/grexal/ctx.mjs';
import { readFileSync } from 'node:fs';
${reads}
console.log(\`env=\${env} files=\${files} connect=\${connects}\`);`;
}

interface Variant {
  args: string[];
  /** The agent's one line: proof that every credential arrived (or that none was asked for). */
  expect: string;
  firstLine: number[];
}

function variant(dir: string | undefined): Variant {
  const script = agentScript(dir !== undefined);
  const manifest = dir
    ? ['--manifest', join(dir, 'grexal.json'), '--connections', join(dir, 'connections.json')]
    : [];
  return {
    args: [
      'bin/grexal.mjs',
      'run',
      '--image',
      IMAGE,
      ...manifest,
      '--',
      'node',
      '--input-type=module',
      '-e',
      script,
    ],
    expect: dir
      ? `env=${ENV_NAMES.length} files=${FILES.length} connect=${IDS.length}\n`
      : 'env=0 files=0 connect=0\n',
    firstLine: [],
  };
}

/** One run; returns ms to exit and records ms to the first output line. */
async function measure(v: Variant): Promise<number> {
  const run = await timeProcess(process.execPath, v.args);
  if (run.code !== 0 || run.stdout !== v.expect || run.firstOutputMs === undefined) {
    throw new Error(
      `grexal run exited ${run.code} printing ${JSON.stringify(run.stdout)}, not ${JSON.stringify(v.expect)}`,
    );
  }
  v.firstLine.push(run.firstOutputMs);
  return run.exitMs;
}

const load = () =>
  loadavg()
    .map((n) => n.toFixed(2))
    .join(' ');
const dir = mkdtempSync(join(tmpdir(), 'bench-inject-'));
try {
  writeFileSync(join(dir, 'grexal.json'), JSON.stringify(MANIFEST), { mode: 0o600 });
  writeFileSync(join(dir, 'connections.json'), JSON.stringify(credentials()), { mode: 0o600 });
  const withCreds = variant(dir);
  const without = variant(undefined);
  console.log(`bench/inject: ${PAIRS} pairs, alternated, after one warm-up pair; load average ${load()}`);
  const firstRatios: number[] = [];
  const result = await alternate(
    PAIRS,
    () => measure(withCreds),
    () => measure(without),
    (i, a, b) => {
      const fa = withCreds.firstLine.at(-1)!;
      const fb = without.firstLine.at(-1)!;
      firstRatios.push(fa / fb);
      console.log(
        `  pair ${String(i + 1).padStart(2)}: exit ${ms(a)} vs ${ms(b)} (${(a / b).toFixed(3)})  first line ${ms(fa)} vs ${ms(fb)} (${(fa / fb).toFixed(3)})`,
      );
    },
  );
  // The warm-up pair's first lines are not samples.
  const counted = (v: Variant) => v.firstLine.slice(1);
  console.log(
    `5 connections   to exit median ${ms(median(result.a))}, to first line ${ms(median(counted(withCreds)))}`,
  );
  console.log(
    `no connections  to exit median ${ms(median(result.b))}, to first line ${ms(median(counted(without)))}`,
  );
  console.log(
    `median ratio to exit ${result.ratio.toFixed(3)}, to first line ${median(firstRatios).toFixed(3)} (target ≤ 1.05)`,
  );
  console.log(`load average after: ${load()}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
