import { basename, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { GrexalError } from '../errors.ts';
import { IMAGE_NAMES, IMAGE_TAGS } from '../images/index.ts';
import { ensureEngine, findExecutable } from '../runtime/engine-install.ts';
import { DockerRuntime, type EngineInfo, type ImageInfo } from '../runtime/index.ts';
import { type Command, type CommandIo, progress } from './command.ts';
import { type DoctorFacts, doctorChecks, doctorExitCode, formatChecks } from './doctor-checks.ts';

const USAGE = `Usage: grexal doctor [--fix]

Reports what the runner needs and what it found: the container engine (endpoint, version, API
version, storage driver), its OCI runtimes (and whether gVisor's runsc is registered), the images
grexal/base, grexal/agent and grexal/desktop, and Chromium on the host for the browser tests.
Each missing piece comes with its fix.

Options:
  --fix        install and start what is missing: on Debian as root, installs docker.io when
               no engine answers, starts dockerd (log: /var/log/grexal-dockerd.log) and
               registers runsc when it is installed; then reports as above
  -h, --help   show this help

Exit codes: 0 when everything required is there (warnings allowed); 1 when the engine or an
image is missing.
`;

function hostChromium(): string | undefined {
  const fromEnv = process.env.CHROMIUM_PATH;
  if (fromEnv && findExecutable(basename(fromEnv), dirname(fromEnv))) return fromEnv;
  return ['chromium', 'chromium-browser', 'google-chrome'].map((n) => findExecutable(n)).find(Boolean);
}

async function gatherFacts(signal: AbortSignal): Promise<DoctorFacts> {
  const base = { runscPath: findExecutable('runsc'), chromiumPath: hostChromium() };
  let runtime: DockerRuntime;
  let engine: EngineInfo;
  try {
    runtime = await DockerRuntime.connect({ signal });
    engine = await runtime.info();
  } catch (error) {
    if (!(error instanceof GrexalError) || error.code !== 'E_ENGINE_UNREACHABLE') throw error;
    return { ...base, engine: undefined, engineError: error.message, images: [] };
  }
  const images: Array<{ tag: string; image: ImageInfo | undefined }> = await Promise.all(
    IMAGE_NAMES.map(async (n) => ({ tag: IMAGE_TAGS[n], image: await runtime.image(IMAGE_TAGS[n]) })),
  );
  return { ...base, engine, images };
}

async function fix(io: CommandIo): Promise<void> {
  const did: string[] = [];
  await ensureEngine({
    log: (line) => {
      did.push(line);
      progress(io, line);
    },
    signal: io.signal,
  });
  io.stdout.write(did.length === 0 ? 'fix: nothing to do; the engine was already up.\n' : 'fix: done.\n');
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check the engine, runtimes and images; --fix installs what is missing',
  usage: USAGE,
  async run(args, io) {
    let values: { fix?: boolean };
    try {
      ({ values } = parseArgs({ args, options: { fix: { type: 'boolean', default: false } } }));
    } catch (error) {
      io.stderr.write(`grexal doctor: ${(error as Error).message}\n\n${USAGE}`);
      return 2;
    }
    if (values.fix) await fix(io);
    const checks = doctorChecks(await gatherFacts(io.signal));
    io.stdout.write(formatChecks(checks));
    return doctorExitCode(checks);
  },
};
