import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { GrexalError } from '../errors.ts';
import { type CreateSandboxInput, formatBytes, Runner, type Sandbox } from '../sandbox/index.ts';
import { startTakeoverServer } from '../takeover/index.ts';
import { mark } from '../timings.ts';
import { type Command, type CommandIo, progress } from './command.ts';
import { LIMIT_FLAGS, LIMIT_FLAGS_USAGE, parseLimitFlags } from './limit-flags.ts';
import {
  manifestWithNetwork,
  NETWORK_FLAGS,
  NETWORK_FLAGS_USAGE,
  parseNetworkFlags,
} from './network-flags.ts';

const USAGE = `Usage: grexal run [options] -- CMD [ARGS...]

Runs CMD in a hardened sandbox, streams its output as it comes and exits with its exit code.
Ctrl-C or the timeout destroys the sandbox; nothing is left behind either way.

Options:
  --image IMG        sandbox image (default grexal/agent; grexal/desktop with --desktop)
  --manifest FILE    grexal.json declaring the agent's connections
  --connections FILE the credentials for them (default: .grexal/connections.json beside the manifest)
  --desktop          run a desktop (Xtigervnc, Chromium) for browser logins
  --takeover-port N  serve takeover pages on 127.0.0.1:N (default: any free port)
${LIMIT_FLAGS_USAGE}
${NETWORK_FLAGS_USAGE}
  --runtime NAME     OCI runtime registered with the engine, e.g. runsc (gVisor)
  -h, --help         show this help

Exit codes: CMD's own; 124 on timeout; 127 when CMD is not in the image; 130 on Ctrl-C;
1 when the runner itself failed, or the Docker engine crashed or shut down under the sandbox
(the message says why and what to do). A process killed for memory is named whatever the code.

Example:
  grexal run --image grexal/agent -- sh -c 'id -u; exit 3'
`;

const EXIT_TIMEOUT = 124;
const EXIT_RUNNER_FAILED = 1;
const EXIT_INTERRUPTED = 130;

export const runCommand: Command = {
  name: 'run',
  summary: 'run a command in a hardened sandbox',
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args,
      allowPositionals: true,
      options: {
        image: { type: 'string' },
        manifest: { type: 'string' },
        connections: { type: 'string' },
        desktop: { type: 'boolean', default: false },
        'takeover-port': { type: 'string' },
        runtime: { type: 'string' },
        ...LIMIT_FLAGS,
        ...NETWORK_FLAGS,
      },
    });
    if (positionals.length === 0) {
      io.stderr.write(`grexal run: no command given.\n\n${USAGE}`);
      return 2;
    }
    const limits = parseLimitFlags(values);
    const network = parseNetworkFlags(values);
    const credentials = await readCredentialFiles(values.manifest, values.connections);
    mark('args parsed');
    // One run: the engine's ping goes beside the create, which proves the engine anyway, and the
    // leftovers of dead runners are removed once the agent has said something (or the run ended):
    // the reaper's engine calls and spawns would otherwise compete with the agent's own start.
    let started!: () => void;
    const running = new Promise<void>((resolve) => {
      started = resolve;
    });
    const runner = await Runner.start({ signal: io.signal, pingFirst: false, reapAfter: running });
    mark('runner started');
    try {
      const sandbox = await runner.create({
        image: values.image ?? (values.desktop ? 'grexal/desktop' : 'grexal/agent'),
        command: positionals,
        desktop: values.desktop || undefined,
        limits,
        runtime: values.runtime,
        ...credentials,
        ...(network === undefined ? {} : { network }),
        // Nobody can send a new credential to a `grexal run`: a broken connection fails at once.
        reconnectTimeoutMs: 0,
      });
      mark('sandbox options');
      sandbox.onEvent((event) => {
        if (event.type === 'log' || event.type === 'exit' || event.type === 'error') started();
      });
      const port = values['takeover-port'];
      return await runLocally(runner, sandbox, io, port === undefined ? undefined : Number(port));
    } finally {
      started();
      await runner.close();
    }
  },
};

/**
 * A local run (`grexal run`, `grexal dev`): a desktop sandbox gets its takeover pages served on
 * loopback while it runs; the output goes to the terminal until the sandbox ends.
 */
export async function runLocally(
  runner: Runner,
  sandbox: Sandbox,
  io: CommandIo,
  takeoverPort = 0,
): Promise<number> {
  const takeoverServer = sandbox.options.desktop
    ? await startTakeoverServer({ broker: runner.takeovers, host: '127.0.0.1', port: takeoverPort })
    : undefined;
  try {
    return await runToExit(sandbox, io);
  } finally {
    await takeoverServer?.close();
  }
}

/**
 * The manifest and credentials files of local runs. Without --connections, the credentials are
 * read from .grexal/connections.json beside the manifest when it exists.
 */
export async function readCredentialFiles(
  manifestPath: string | undefined,
  connectionsPath: string | undefined,
): Promise<Pick<CreateSandboxInput, 'manifest' | 'credentials'>> {
  if (manifestPath === undefined) {
    if (connectionsPath !== undefined) {
      throw new GrexalError(
        'E_VALIDATION',
        '--connections needs --manifest: the manifest declares the connections.',
      );
    }
    return {};
  }
  const manifest = manifestWithNetwork(
    await readManifestFile(manifestPath),
    await readJsonFile(manifestPath, 'manifest'),
  );
  const besideManifest = join(dirname(manifestPath), '.grexal', 'connections.json');
  const path = connectionsPath ?? (existsSync(besideManifest) ? besideManifest : undefined);
  return { manifest, credentials: path === undefined ? {} : await readJsonFile(path, 'connections file') };
}

/** Streams a sandbox's output to the terminal until it ends; Ctrl-C destroys it. */
async function runToExit(sandbox: Sandbox, io: CommandIo): Promise<number> {
  sandbox.onEvent((event) => {
    if (event.type === 'log') {
      (event.stream === 'stdout' ? io.stdout : io.stderr).write(event.text);
      if (event.stream === 'stdout') mark('first stdout written');
    } else if (event.type === 'takeover.requested') io.stderr.write(`takeover: ${String(event['url'])}\n`);
  });
  const interrupted = (): void => {
    progress(io, 'interrupted; destroying the sandbox');
    void sandbox.destroy('destroyed');
  };
  io.signal.addEventListener('abort', interrupted, { once: true });
  try {
    await sandbox.start({ signal: io.signal });
    const exit = await sandbox.exited;
    mark('sandbox gone');
    if (exit.reason === 'timeout') {
      progress(io, `timed out after ${sandbox.options.timeoutMs / 1000}s; the sandbox was destroyed`);
      return EXIT_TIMEOUT;
    }
    if (exit.oomKilled) {
      progress(
        io,
        `a process in the sandbox was killed for memory (the cgroup's record; exit code ${exit.exitCode}): raise --memory (now ${formatBytes(sandbox.options.limits.memoryBytes)})`,
      );
    }
    if (exit.reason === 'engine_lost' || exit.reason === 'engine_stopped' || exit.reason === 'killed') {
      progress(io, exit.message ?? exit.reason);
      return EXIT_RUNNER_FAILED;
    }
    if (exit.reason === 'destroyed') return EXIT_INTERRUPTED;
    return exit.exitCode;
  } catch (error) {
    if (io.signal.aborted) return EXIT_INTERRUPTED;
    throw error;
  } finally {
    io.signal.removeEventListener('abort', interrupted);
    await sandbox.destroy();
  }
}

/**
 * grexal.json describes the whole agent; the runner needs its connections only, so the file's
 * other fields (name, entrypoint, …) are not refused as unknown.
 */
export async function readManifestFile(path: string): Promise<unknown> {
  const json = await readJsonFile(path, 'manifest');
  const isObject = json !== null && typeof json === 'object' && !Array.isArray(json);
  return isObject && 'connections' in json ? { connections: json.connections } : json;
}

/** Reads a JSON file the user named, with an error that says which file and why. */
export async function readJsonFile(path: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new GrexalError('E_VALIDATION', `Cannot read ${what} ${path}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new GrexalError('E_VALIDATION', `${what} ${path} is not valid JSON: ${(error as Error).message}`);
  }
}
