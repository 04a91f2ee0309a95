/**
 * The README's demo: runs examples/demo-agent with demo credentials for all four modes through
 * `grexal dev`'s loop. The agent reports each channel (masked), opens a login page in its
 * sandbox's browser and asks for a takeover; the link is printed for someone at the machine, or,
 * with --auto, a scripted user logs in through the real stream.
 *
 *   npm run demo [-- --auto]
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CommandIo } from '../runner/cli/command.ts';
import { runDev } from '../runner/cli/dev.ts';
import { formatError } from '../runner/cli/format-error.ts';
import { abortOnSignals } from '../runner/cli/interrupts.ts';
import { completeTakeover } from './scripted-user.ts';

const { values } = parseArgs({ options: { auto: { type: 'boolean', default: false } } });
// Run from the repository root (scripts/demo.sh makes sure of it).
const dir = join(process.cwd(), 'examples', 'demo-agent');
const interrupts = abortOnSignals(process.stderr);
const failed = new AbortController();
const io: CommandIo = {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: AbortSignal.any([interrupts.signal, failed.signal]),
};
const say = (line: string) => process.stderr.write(`demo: ${line}\n`);

let userFailed: unknown;
const code = await runDev(
  {
    dir,
    // The demo shows the real takeover, streamed from the desktop sandbox (and its login site is
    // served inside the sandbox, where a local browser could not reach it).
    browser: 'desktop',
    connectionsPath: join(dir, 'demo-connections.json'),
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
if (userFailed) say(`the scripted user failed: ${(userFailed as Error).message}`);
say(
  code === 0
    ? 'done: every channel reported, and the agent logged in through the takeover'
    : `failed (exit ${code})`,
);
process.exit(userFailed ? 1 : code);
