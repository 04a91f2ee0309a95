// The demo agent: reports what it received over each channel (the runner masks every value in
// its output), then logs in to a small site through a takeover: it serves the site inside its own
// sandbox, opens it in the sandbox's Chromium, and asks the user to log in.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { ctx } from '/opt/grexal/ctx.mjs';
import { startLoginSite } from './login-site.mjs';

const say = (line) => console.log(`demo-agent: ${line}`);

say('--- env channel ---');
for (const name of [
  'OPENAI_API_KEY',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'GOOGLE_APPLICATION_CREDENTIALS',
]) {
  const value = process.env[name];
  say(`${name}=${value} (${value ? `${value.length} characters` : 'missing'})`);
}

say('--- file channel ---');
for (const id of readdirSync('/tmp/grexal')) {
  for (const name of readdirSync(`/tmp/grexal/${id}`)) {
    const path = `/tmp/grexal/${id}/${name}`;
    const { mode, uid, size } = statSync(path);
    say(`${path}: mode ${(mode & 0o777).toString(8)}, uid ${uid}, ${size} bytes`);
  }
}
const serviceAccount = JSON.parse(readFileSync(process.env.GOOGLE_APPLICATION_CREDENTIALS, 'utf8'));
say(`service account ${serviceAccount.client_email}, private key ${serviceAccount.private_key}`);

say('--- ctx.connect() (JavaScript client) ---');
for (const id of ['openai', 'aws', 'gmail', 'gcp']) say(`${id}: ${JSON.stringify(await ctx.connect(id))}`);
try {
  await ctx.connect('github');
} catch (error) {
  say(`github: refused with ${error.code} (not in grexal.json)`);
}
say('--- ctx.connect() (Python client) ---');
const python = "from grexal import ctx; print(ctx.connect('openai'))";
say(`openai: ${execFileSync('python3', ['-c', python], { encoding: 'utf8' }).trim()}`);

say('--- browser_login ---');
const site = await startLoginSite(8080);
const browser = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
const before = browser.contexts()[0];
const page = before.pages()[0] ?? (await before.newPage());
await page.goto(`${site.url}/login`);
say('opened the login page in the sandbox browser; asking the user to log in');
try {
  await ctx.requestTakeover({
    connectionId: 'demo-site',
    reason: 'Log in to the demo site: any username, password "grexal-demo".',
    timeoutMs: 10 * 60_000,
  });
} catch (error) {
  // takeover_cancelled (the user pressed Cancel) or takeover_expired (nobody came in time).
  say(`the takeover ended without a login: ${error.code}`);
  process.exit(1);
}

// The takeover cut this agent off the browser (docs/browser.md): wait until it answers again,
// then connect anew. The session must be in the browser; give a form post in flight a moment.
await ctx.waitForBrowser({ timeoutMs: 30_000 });
const resumed = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
const context = resumed.contexts()[0];
let session;
for (let i = 0; i < 50 && !session; i++) {
  session = (await context.cookies(site.url)).find((c) => c.name === 'demo_session');
  if (!session) await new Promise((resolve) => setTimeout(resolve, 200));
}
if (!session) {
  say('the takeover ended without a session cookie: not logged in');
  process.exit(1);
}
say(`logged in as ${site.userOf(session.value)}: the session lives in the sandbox's browser`);
// Leave the sandbox's browser running (it is the desktop's); only our connection to it goes.
await site.close();
process.exit(0);
