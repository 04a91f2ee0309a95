import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { buildAgentImage, connectionsTemplate } from '../dev/index.ts';
import { type Problem, ValidationError } from '../errors.ts';
import { manifestSchema, prepareInjection } from '../inject/index.ts';
import { Runner } from '../sandbox/index.ts';
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

An agent author's loop: builds DIR's Dockerfile (FROM grexal/agent, or grexal/desktop for browser
logins), reads DIR/grexal.json and DIR/.grexal/connections.json, runs the agent in a sandbox with
those credentials, and opens each takeover link in the local browser. Ctrl-C cleans up.
When DIR/.grexal/connections.json is missing, writes a template to fill in and stops.

Options:
  --connections FILE   credentials to use instead of DIR/.grexal/connections.json
  --no-open            print takeover links instead of opening them
  --takeover-port N    serve takeover pages on 127.0.0.1:N (default: any free port)
${NETWORK_FLAGS_USAGE}
  -h, --help           show this help
`;

const PLACEHOLDER = /^<fill in:/;

export interface DevOptions {
  dir: string;
  connectionsPath?: string;
  takeoverPort?: number;
  /** Called with each takeover link; opens it in the local browser by default. */
  onTakeover?: (url: string) => void;
  /** The developer's policy (`--network`, `--allow`); it narrows grexal.json's `network`. */
  network?: unknown;
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

  const runner = await Runner.start({ signal: io.signal });
  try {
    const image = await buildAgentImage(runner.runtime, options.dir, {
      log: (line) => progress(io, line),
      signal: io.signal,
    });
    const sandbox = await runner.create({
      image: image.tag,
      desktop: image.desktop || undefined,
      manifest: manifestWithNetwork(
        manifest,
        await readJsonFile(join(options.dir, 'grexal.json'), 'manifest'),
      ),
      credentials,
      ...(options.network === undefined ? {} : { network: options.network }),
    });
    const onTakeover = options.onTakeover ?? ((url: string) => openInBrowser(url, io));
    sandbox.onEvent((event) => {
      if (event.type === 'takeover.requested') onTakeover(event.url);
    });
    progress(io, `running ${image.tag} (sandbox ${sandbox.id})`);
    return await runLocally(runner, sandbox, io, options.takeoverPort);
  } finally {
    await runner.close();
  }
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
        'no-open': { type: 'boolean', default: false },
        'takeover-port': { type: 'string' },
        ...NETWORK_FLAGS,
      },
    });
    const network = parseNetworkFlags(values);
    const port = values['takeover-port'];
    return runDev(
      {
        dir: positionals[0] ?? '.',
        connectionsPath: values.connections,
        takeoverPort: port === undefined ? undefined : Number(port),
        onTakeover: values['no-open'] ? () => {} : undefined,
        network,
      },
      io,
    );
  },
};
