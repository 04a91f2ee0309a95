// The demo agent: reports what it received over each channel (the runner masks every value in
// its output), then logs in to a small site through a takeover: it opens the site in its browser
// (behind GREXAL_CDP_URL), asks the user to log in, and finds the session there afterwards. The
// site is its own, served inside its sandbox, unless DEMO_LOGIN_URL names one (see below).
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
// The login site stands for a third-party site. Given its URL (DEMO_LOGIN_URL: a run with the
// local browser, which is the developer's own and reaches their machine's sites, not this
// sandbox's), the agent opens that; otherwise it serves the site inside its own sandbox, whose
// loopback the desktop sandbox's browser shares.
const given = process.env.DEMO_LOGIN_URL;
if (given !== undefined && !/^https?:\/\/[^/]+/.test(given)) {
  say(`DEMO_LOGIN_URL is not an http(s) URL: ${JSON.stringify(given)}`);
  process.exit(2);
}
const site = given === undefined ? await startLoginSite(8080) : undefined;
const loginUrl = given ?? `${site.url}/login`;
const { origin } = new URL(loginUrl);
const browser = await chromium.connectOverCDP(process.env.GREXAL_CDP_URL);
const before = browser.contexts()[0];
const page = before.pages()[0] ?? (await before.newPage());
await page.goto(loginUrl);
say(
  `opened the login page (${site ? 'served in this sandbox' : origin}) in the browser; asking the user to log in`,
);
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
  session = (await context.cookies(origin)).find((c) => c.name === 'demo_session');
  if (!session) await new Promise((resolve) => setTimeout(resolve, 200));
}
if (!session) {
  say('the takeover ended without a session cookie: not logged in');
  process.exit(1);
}
// Whose session it is, asked of the site through the browser: the browser holds the (HttpOnly)
// cookie, and a site on the developer's machine is out of this sandbox's reach anyway.
const tab = context.pages().find((p) => p.url().startsWith(origin)) ?? (await context.newPage());
if (!tab.url().startsWith(origin)) await tab.goto(`${origin}/whoami`);
const user = await tab.evaluate(() => fetch('/whoami').then((r) => (r.ok ? r.text() : '')));
if (!user) {
  say('the site knows no user for the session cookie: not logged in');
  process.exit(1);
}
say(`logged in as ${user}: the session lives in the browser`);
// Leave the browser running (the desktop's, or the local window grexal dev closes itself); only
// our connection to it goes.
await site?.close();
process.exit(0);
