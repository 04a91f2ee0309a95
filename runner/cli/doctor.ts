import { basename, dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { GrexalError } from '../errors.ts';
import { findExecutable } from '../host/executable.ts';
import { buildImages, IMAGE_NAMES, IMAGE_TAGS } from '../images/index.ts';
import { ensureEngine } from '../runtime/engine-install.ts';
import { DockerRuntime, type EngineInfo, type ImageInfo } from '../runtime/index.ts';
import { type Command, type CommandIo, progress } from './command.ts';
import { type DoctorFacts, doctorChecks, doctorExitCode, formatChecks } from './doctor-checks.ts';

const USAGE = `Usage: grexal doctor [--fix]

Reports what the runner needs and what it found: the container engine (endpoint, version, API
version, storage driver), its OCI runtimes (and whether gVisor's runsc is registered), the images
grexal/base, grexal/agent and grexal/desktop, and Chromium on the host for the browser tests.
Each missing piece comes with its fix.

Options:
  --fix        install, start and build what is missing, then report as above: on Debian as
               root, installs docker.io when no engine answers, starts dockerd (log:
               /var/log/grexal-dockerd.log), registers runsc when it is installed, and builds
               the missing or outdated images (as \`grexal images build\` does; the sandbox-agent
               comes from dist/, so run \`npm run build\` first)
  -h, --help   show this help

Exit codes:
  0  everything required is there (warnings, such as no runsc or no Chromium, allowed)
  1  the engine or an image is missing: \`grexal doctor\` only reports, so this is its answer on a
     fresh machine; with --fix, 1 means a fix was tried and something is still missing
  2  a usage mistake
  Other failures of --fix (an apt or dockerd error, an image build) name the step, the last lines
  of its log and the fix, and exit 1.
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

/** The engine first (install, start, runsc), then the images: each fix needs the one before. */
async function fix(io: CommandIo): Promise<void> {
  let engineSteps = 0;
  await ensureEngine({
    log: (line) => {
      engineSteps++;
      progress(io, line);
    },
    signal: io.signal,
  });
  const runtime = await DockerRuntime.connect({ signal: io.signal });
  const { images } = await buildImages(runtime, { log: (line) => progress(io, line), signal: io.signal });
  const built = images.filter((i) => i.action !== 'skipped').length;
  io.stdout.write(
    engineSteps === 0 && built === 0
      ? 'fix: nothing to do; the engine and the images were ready.\n'
      : 'fix: done.\n',
  );
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'check the engine, runtimes and images; --fix installs, starts and builds what is missing',
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
