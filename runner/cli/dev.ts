import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalChromium, localBrowserProblem } from '../browser/index.ts';
import {
  askDeveloper,
  buildAgentImage,
  connectionsTemplate,
  parseEnvFlags,
  watchConnections,
} from '../dev/index.ts';
import { type Problem, ValidationError } from '../errors.ts';
import { manifestSchema, prepareInjection } from '../inject/index.ts';
import { type LocalTakeoverRequest, Runner } from '../sandbox/index.ts';
import { parseOrThrow } from '../validation.ts';
import { type Command, type CommandIo, progress } from './command.ts';
import {
  manifestWithNetwork,
  NETWORK_FLAGS,
  NETWORK_FLAGS_USAGE,
  parseNetworkFlags,
} from './network-flags.ts';
import { readJsonFile, readManifestFile, runLocally } from './run.ts';

const USAGE = `Usage: grexal dev [DIR] [options]

An agent author's loop: builds DIR's Dockerfile (FROM grexal/agent), reads DIR/grexal.json and
DIR/.grexal/connections.json, and runs the agent in a sandbox with those credentials. Ctrl-C
cleans up. When DIR/.grexal/connections.json is missing, writes a template to fill in and stops.

An agent with browser_login connections gets a local Chromium window on this machine's display
(a fresh temporary profile, removed afterwards), which it drives through GREXAL_CDP_URL as it
would the sandbox's browser in production. ctx.request_takeover() then opens no stream: the
reason is printed, you log in in that window and press Enter (Ctrl-C cancels the takeover).
The agent's DevTools connections are closed while you do, as in production: it reconnects after.

Options:
  --browser MODE       local (the default with browser_login connections): the local Chromium
                       window, needs chromium and a display (DISPLAY);
                       desktop: today's desktop sandbox (Dockerfile FROM grexal/desktop) and its
                       takeover link, to test the real takeover
  --connections FILE   credentials to use instead of DIR/.grexal/connections.json
  --env NAME=VALUE     non-secret environment for the agent (repeatable), e.g. a task's inputs or
                       the URL of a site served on this machine for the local browser
  --watch-connections  apply edits of the connections file while the agent runs: a changed entry
                       re-authorises or rotates that connection, a deleted one removes it
                       (without it, edits are only reported)
  --no-open            print takeover links instead of opening them (--browser desktop)
  --takeover-port N    serve takeover pages on 127.0.0.1:N (default: any free port)
${NETWORK_FLAGS_USAGE}
  -h, --help           show this help
`;

const PLACEHOLDER = /^<fill in:/;

export type DevBrowser = 'local' | 'desktop';

export interface DevOptions {
  dir: string;
  /**
   * `local`: a local Chromium window behind the sandbox's CDP relay; `desktop`: a desktop sandbox
   * when the Dockerfile is FROM grexal/desktop, its takeovers streamed. Default `local` when the
   * manifest has browser_login connections, `desktop` (today's path) otherwise.
   */
  browser?: DevBrowser;
  connectionsPath?: string;
  takeoverPort?: number;
  /** Apply edits of the connections file to the running agent. Default false (reported only). */
  watchConnections?: boolean;
  /** Called with each takeover link; opens it in the local browser by default. */
  onTakeover?: (url: string) => void;
  /** The developer's policy (`--network`, `--allow`); it narrows grexal.json's `network`. */
  network?: unknown;
  /** Non-secret environment for the agent (`--env`); credentials come from the connections file. */
  env?: Record<string, string>;
}

/** Every credential still holding a template placeholder, as problems with their paths. */
function placeholders(value: unknown, path: string): Problem[] {
  if (typeof value === 'string' && PLACEHOLDER.test(value)) {
    return [
      {
        code: 'E_CREDENTIAL_PLACEHOLDER',
        path,
        message: 'Still the template placeholder.',
        fix: 'Fill it in.',
      },
    ];
  }
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => placeholders(v, path ? `${path}.${k}` : k));
  }
  return [];
}

/** Writes the connections template; returns the exit code that stops the run. */
async function writeTemplate(io: CommandIo, manifest: unknown, path: string): Promise<number> {
  const { connections } = parseOrThrow(manifestSchema, manifest, 'manifest');
  const { template, toFill } = connectionsTemplate(connections);
  await mkdir(join(path, '..'), { recursive: true, mode: 0o700 });
  await writeFile(path, `${JSON.stringify(template, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
  progress(io, `wrote ${path}: fill in ${toFill.length ? toFill.join(', ') : 'nothing'} and run again`);
  return 2;
}

export async function runDev(options: DevOptions, io: CommandIo): Promise<number> {
  const manifest = await readManifestFile(join(options.dir, 'grexal.json'));
  const connectionsPath = options.connectionsPath ?? join(options.dir, '.grexal', 'connections.json');
  if (!existsSync(connectionsPath)) return writeTemplate(io, manifest, connectionsPath);
  const credentials = await readJsonFile(connectionsPath, 'connections file');
  const unfilled = placeholders(credentials, '');
  if (unfilled.length > 0) throw new ValidationError(unfilled, `connections file ${connectionsPath}`);
  // Every problem of the manifest and the credentials, before a minute goes into a build.
  (await prepareInjection({ manifest, credentials })).dispose();
  const mode = options.browser ?? (hasBrowserLogin(manifest) ? 'local' : 'desktop');
  // No chromium or no display: said before a minute goes into a build, naming the fix.
  if (mode === 'local') {
    const problem = localBrowserProblem({});
    if (problem) throw problem;
  }

  const runner = await Runner.start({ signal: io.signal });
  let localBrowser: LocalChromium | undefined;
  // Once the run ends the browser goes with the runner (its pipe closes before close() is called
  // on it): no surprise then, so nothing to say.
  let ending = false;
  try {
    const image = await buildAgentImage(runner.runtime, options.dir, {
      log: (line) => progress(io, line),
      signal: io.signal,
    });
    if (mode === 'local') {
      localBrowser = await LocalChromium.launch({ logger: runner.logger, signal: io.signal });
      progress(
        io,
        `local browser: Chromium (pid ${localBrowser.pid}), a fresh profile in ${localBrowser.profileRoot}`,
      );
      const launched = localBrowser;
      void launched.exited.then(() => {
        if (!launched.closing && !ending)
          progress(
            io,
            'the local browser closed (its window was closed?): the agent has no browser any more',
          );
      });
    }
    const browser = localBrowser && {
      upstream: localBrowser,
      downloadsDir: localBrowser.downloadsDir,
      takeOver: (request: LocalTakeoverRequest) =>
        askDeveloper(request, {
          say: (line) => progress(io, line),
          stdin: io.stdin,
          interceptInterrupt: io.interceptInterrupt,
        }),
    };
    const sandbox = await runner.create({
      image: image.tag,
      // With the local browser the sandbox is a plain one, whatever the Dockerfile's base.
      desktop: (mode === 'desktop' && image.desktop) || undefined,
      ...(browser ? { browser } : {}),
      manifest: manifestWithNetwork(
        manifest,
        await readJsonFile(join(options.dir, 'grexal.json'), 'manifest'),
      ),
      credentials,
      ...(options.env ? { env: options.env } : {}),
      ...(options.network === undefined ? {} : { network: options.network }),
      // Only an author who watches the connections file can re-authorise: otherwise fail at once.
      ...(options.watchConnections ? {} : { reconnectTimeoutMs: 0 }),
    });
    const onTakeover = options.onTakeover ?? ((url: string) => openInBrowser(url, io));
    sandbox.onEvent((event) => {
      if (event.type === 'takeover.requested') onTakeover(event.url);
    });
    progress(io, `running ${image.tag} (sandbox ${sandbox.id})`);
    const watch = watchConnections(connectionsPath, credentials as Record<string, unknown>, sandbox, {
      apply: options.watchConnections ?? false,
      log: (line) => progress(io, line),
      isPlaceholder: (value) => placeholders(value, '').length > 0,
    });
    try {
      return await runLocally(runner, sandbox, io, options.takeoverPort);
    } finally {
      watch.close();
    }
  } finally {
    ending = true;
    await runner.close();
    // After the sandbox: the relay in front of it has closed by then.
    await localBrowser?.close();
  }
}

/** Whether the manifest declares a browser_login connection (it was validated just before). */
function hasBrowserLogin(manifest: unknown): boolean {
  const connections = (manifest as { connections?: Array<{ mode?: unknown }> } | undefined)?.connections;
  return Array.isArray(connections) && connections.some((connection) => connection?.mode === 'browser_login');
}

/** xdg-open where there is a desktop session; the link is printed on stderr either way. */
function openInBrowser(url: string, io: CommandIo): void {
  if (!process.env['DISPLAY'] && !process.env['WAYLAND_DISPLAY']) {
    progress(io, 'no local desktop session: open the takeover link above in a browser');
    return;
  }
  const child = spawn('xdg-open', [url], { stdio: 'ignore', detached: true });
  child.on('error', () =>
    progress(io, 'could not start xdg-open: open the takeover link above in a browser'),
  );
  child.unref();
}

export const devCommand: Command = {
  name: 'dev',
  summary: 'build and run an agent from its directory, with its local credentials',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        connections: { type: 'string' },
        env: { type: 'string', multiple: true },
        browser: { type: 'string' },
        'no-open': { type: 'boolean', default: false },
        'takeover-port': { type: 'string' },
        'watch-connections': { type: 'boolean', default: false },
        ...NETWORK_FLAGS,
      },
    });
    const network = parseNetworkFlags(values);
    const env = parseEnvFlags(values.env);
    const browser = values.browser;
    if (browser !== undefined && browser !== 'local' && browser !== 'desktop')
      throw new ValidationError(
        [
          {
            code: 'E_FIELD_TYPE',
            path: '--browser',
            message: `Not a browser mode: ${JSON.stringify(browser)}.`,
            fix: 'Use --browser local or --browser desktop.',
          },
        ],
        'flags',
      );
    const port = values['takeover-port'];
    return runDev(
      {
        dir: positionals[0] ?? '.',
        browser,
        connectionsPath: values.connections,
        takeoverPort: port === undefined ? undefined : Number(port),
        onTakeover: values['no-open'] ? () => {} : undefined,
        watchConnections: values['watch-connections'],
        network,
        env,
      },
      io,
    );
  },
};
