import { parseArgs } from 'node:util';
import {
  type BuiltImage,
  buildImages,
  IMAGE_NAMES,
  IMAGE_TAGS,
  type ImageName,
  LABEL_CONTEXT_HASH,
} from '../images/index.ts';
import { DockerRuntime } from '../runtime/index.ts';
import { type Command, type CommandIo, progress } from './command.ts';

const USAGE = `Usage: grexal images build [--only base,agent,desktop] [--force]
       grexal images ls

Builds the sandbox images:
  grexal/base     Debian bookworm: debian:bookworm-slim when a registry answers, otherwise
                  bootstrapped offline with debootstrap from the host's Debian mirror (root)
  grexal/agent    base + node, python3, tini, the sandbox-agent and the ctx clients; user agent (1000)
  grexal/desktop  agent + Xtigervnc, matchbox, Chromium, fonts and playwright-core

An image whose inputs (build context, base image, build arguments) did not change is skipped, so
a second run takes a second or two. The sandbox-agent comes from dist/: run \`npm run build\` first.

Options:
  --only LIST   build only these (comma-separated: base, agent, desktop); a missing image they are
                built on is built too
  --force       rebuild even when nothing changed
  -h, --help    show this help

\`grexal images ls\` lists the three images: id, size and the hash of what each was built from.
`;

interface BuildArgs {
  only?: ImageName[];
  force: boolean;
}

/** The build options, or the usage mistake as a message. */
export function parseBuildArgs(args: string[]): BuildArgs | string {
  let values: { only?: string; force?: boolean };
  try {
    ({ values } = parseArgs({ args, options: { only: { type: 'string' }, force: { type: 'boolean' } } }));
  } catch (error) {
    return (error as Error).message;
  }
  if (values.only === undefined) return { force: values.force ?? false };
  const names = values.only
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(IMAGE_NAMES as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) {
    return `--only takes a comma-separated list of ${IMAGE_NAMES.join(', ')}; got '${values.only}'`;
  }
  return { only: names as ImageName[], force: values.force ?? false };
}

const mb = (bytes: number): string => `${Math.round(bytes / 1e6)} MB`;

function summary(images: BuiltImage[]): string {
  const rows = images.map(
    (i) =>
      `  ${i.tag.padEnd(15)} ${i.action.padEnd(12)} ${mb(i.sizeBytes).padStart(7)}  ${(i.elapsedMs / 1000).toFixed(1)} s`,
  );
  return `${rows.join('\n')}\n`;
}

async function build(options: BuildArgs, io: CommandIo): Promise<number> {
  const runtime = await DockerRuntime.connect({ signal: io.signal });
  const started = Date.now();
  const result = await buildImages(runtime, {
    ...options,
    log: (line) => progress(io, line),
    signal: io.signal,
  });
  io.stdout.write(summary(result.images));
  progress(io, `images ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

async function list(io: CommandIo): Promise<number> {
  const runtime = await DockerRuntime.connect({ signal: io.signal });
  let missing = 0;
  for (const name of IMAGE_NAMES) {
    const image = await runtime.image(IMAGE_TAGS[name]);
    if (!image) missing++;
    const detail = image
      ? `${image.id.slice(7, 19)}  ${mb(image.sizeBytes).padStart(7)}  context ${image.labels[LABEL_CONTEXT_HASH]?.slice(0, 12) ?? '-'}`
      : 'missing (run `grexal images build`)';
    io.stdout.write(`  ${IMAGE_TAGS[name].padEnd(15)} ${detail}\n`);
  }
  return missing === 0 ? 0 : 1;
}

export const imagesCommand: Command = {
  name: 'images',
  summary: 'build (or list) the base, agent and desktop images',
  usage: USAGE,
  async run(args, io) {
    const [sub, ...rest] = args;
    if (sub === 'build') {
      const options = parseBuildArgs(rest);
      if (typeof options !== 'string') return build(options, io);
      io.stderr.write(`grexal images build: ${options}\n\n${USAGE}`);
      return 2;
    }
    if (sub === 'ls' && rest.length === 0) return list(io);
    io.stderr.write(`grexal images: expected \`build\` or \`ls\`${sub ? `, got '${sub}'` : ''}.\n\n${USAGE}`);
    return 2;
  },
};
