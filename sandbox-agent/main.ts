/** Entry of the in-sandbox supervisor (bundled to /opt/grexal/sandbox-agent.mjs, Node 18). */
import { CtxLink } from './ctx-link.ts';
import { type Desktop, startDesktop } from './desktop.ts';
import { writeFilesFromTar } from './files.ts';
import type { BootstrapResult } from './protocol.ts';
import { superviseAgent } from './supervisor.ts';
import { CTX_SOCKET_PATH } from './wire.ts';

/** Exit code of the supervisor's own failures, distinct from an agent's usual ones. */
const EXIT_BOOTSTRAP_FAILED = 125;

function log(line: string): void {
  process.stderr.write(`grexal: ${line}\n`);
}

let desktop: Desktop | undefined;

/** Everything the agent needs in place before it starts: its credential files, then the desktop. */
async function prepare(bootstrap: BootstrapResult): Promise<Record<string, string>> {
  if (bootstrap.filesTar) await writeFilesFromTar(Buffer.from(bootstrap.filesTar, 'base64'));
  if (!bootstrap.desktop) return {};
  desktop = await startDesktop(bootstrap.desktop);
  return desktop.env;
}

async function run(): Promise<number> {
  const socketPath = process.env['GREXAL_CTX_SOCKET'] ?? CTX_SOCKET_PATH;
  let link: CtxLink;
  let bootstrap: BootstrapResult;
  try {
    link = await CtxLink.open(socketPath);
    // The image's CMD, if any, arrives as our argv: the default command when the runner sends none.
    // The runner validated all of it with protocol.ts; zod stays out of this bundle to start fast.
    bootstrap = (await link.call('bootstrap', { argv: process.argv.slice(2) })) as BootstrapResult;
  } catch (error) {
    log(`cannot bootstrap from the runner at ${socketPath}: ${(error as Error).message}`);
    return EXIT_BOOTSTRAP_FAILED;
  }
  try {
    const exit = await superviseAgent(bootstrap, {
      log,
      prepare,
      onStarted: (info) => {
        link.call('started', info).then(
          () => link.close(),
          () => link.close(),
        );
      },
    });
    return exit.code;
  } catch (error) {
    log(`the agent was not started: ${(error as Error).message}`);
    link.close();
    return EXIT_BOOTSTRAP_FAILED;
  } finally {
    await desktop?.stop();
  }
}

// Exit at once: the agent is gone, and nothing else here may hold the sandbox open.
process.exit(await run());
