/**
 * The README's demo: runs examples/demo-agent with demo credentials for all four modes through
 * `grexal dev`'s loop. The agent reports each channel (masked), opens a login page in its browser
 * and asks for a takeover.
 *
 * --browser desktop (the default): the agent's browser is its desktop sandbox's and the agent
 * serves the login site inside its sandbox; the takeover link is printed for someone at the
 * machine, or, with --auto, a scripted user logs in through the real stream.
 * --browser local: the agent drives a Chromium window on this machine's display (as `grexal dev`
 * does by default); the demo serves the login site on this machine's loopback, where that window
 * is, and hands the agent its URL; you log in in the window and press Enter. It needs a person
 * (test/dev-browser.test.ts automates it on an Xvfb of its own), so it takes no --auto.
 *
 *   npm run demo [-- --auto]   or   npm run demo -- --browser local
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CommandIo } from '../runner/cli/command.ts';
import { runDev } from '../runner/cli/dev.ts';
import { formatError } from '../runner/cli/format-error.ts';
import { abortOnSignals } from '../runner/cli/interrupts.ts';
import { startLoginSite } from './demo-agent/login-site.mjs';
import { completeTakeover } from './scripted-user.ts';

const { values } = parseArgs({
  options: { auto: { type: 'boolean', default: false }, browser: { type: 'string', default: 'desktop' } },
});
const say = (line: string) => process.stderr.write(`demo: ${line}\n`);
if (values.browser !== 'desktop' && values.browser !== 'local') {
  say(`--browser is local or desktop, not ${JSON.stringify(values.browser)}`);
  process.exit(2);
}
if (values.browser === 'local' && values.auto) {
  say(
    '--auto drives the desktop takeover through its stream; with --browser local you are the user: ' +
      'drop --auto, log in in the window and press Enter',
  );
  process.exit(2);
}
const local = values.browser === 'local';
// Run from the repository root (scripts/demo.sh makes sure of it).
const dir = join(process.cwd(), 'examples', 'demo-agent');
const interrupts = abortOnSignals(process.stderr);
const failed = new AbortController();
const io: CommandIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: AbortSignal.any([interrupts.signal, failed.signal]),
  // The local takeover's prompt: Enter completes it, Ctrl-C cancels it.
  stdin: process.stdin,
  interceptInterrupt: interrupts.intercept,
};

// The local window is this machine's browser: the site it logs in to is on this machine too.
const site = local
  ? await startLoginSite(0, {
      onLogin: (user) => say(`the demo site logged ${user} in: press Enter to hand the browser back`),
    })
  : undefined;
if (site) say(`serving the demo login site on ${site.url} for the local browser`);
let userFailed: unknown;
const code = await runDev(
  {
    dir,
    browser: local ? 'local' : 'desktop',
    connectionsPath: join(dir, 'demo-connections.json'),
    ...(site ? { env: { DEMO_LOGIN_URL: `${site.url}/login` } } : {}),
    onTakeover: (url) => {
      if (!values.auto) {
        say(
          'open the takeover link above in a browser, log in (any username, password grexal-demo), press Done',
        );
        return;
      }
      say('--auto: a scripted user opens the link and logs in through the stream');
      completeTakeover(url, { log: (line) => say(`scripted user: ${line}`) }).catch((error: unknown) => {
        userFailed = error;
        failed.abort();
      });
    },
  },
  io,
).catch((error: unknown) => {
  process.stderr.write(`${formatError(error)}\n`);
  return 1;
});
await site?.close();
if (userFailed) say(`the scripted user failed: ${(userFailed as Error).message}`);
say(
  code === 0
    ? 'done: every channel reported, and the agent logged in through the takeover'
    : `failed (exit ${code})`,
);
process.exit(userFailed ? 1 : code);
