/** Images and engine facts through dockerode; DockerRuntime delegates its image methods here. */
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { GrexalError } from '../errors.ts';
import { withDeadline } from './docker-calls.ts';
import { fromDockerError, isNotFound } from './docker-errors.ts';
import { imagePathSegment } from './image-reference.ts';
import type { BuildImageOptions, EngineInfo, ImageInfo } from './runtime.ts';

/** How many lines of the failing step's output go into E_IMAGE_BUILD_FAILED. */
const FAILED_STEP_LINES = 40;
/** The engine colours a RUN step's stderr; progress goes to logs and terminals alike, so plain. */
const ANSI_COLOR = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

export async function inspectImage(
  docker: Dockerode,
  tag: string,
  endpoint = 'the configured endpoint',
): Promise<ImageInfo | undefined> {
  try {
    // The name goes into the URL path (`/images/<name>/json`): refused there unless a reference.
    const image = await withDeadline('an image inspect', endpoint, (abortSignal) =>
      // Its abortSignal is dropped by dockerode; the deadline still holds (withDeadline races it).
      docker.getImage(imagePathSegment(tag)).inspect({ abortSignal } as Dockerode.ImageInspectOptions),
    );
    return { tag, id: image.Id, labels: image.Config?.Labels ?? {}, sizeBytes: image.Size };
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw fromDockerError(error, { image: tag });
  }
}

/** One JSON message of the engine's build or import stream. */
interface StreamMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * Follows a build's output. Keeps the current step's lines so that a failure reports the step
 * that failed and what it printed, not only the engine's one-line summary.
 */
export class BuildLog {
  private step = '';
  private stepLines: string[] = [];
  private partial = '';
  error: string | undefined;

  constructor(private readonly onLine?: (line: string) => void) {}

  push(message: StreamMessage): void {
    if (message.error || message.errorDetail?.message) {
      this.error = (message.errorDetail?.message ?? message.error ?? '').trim();
      return;
    }
    const text = this.partial + (message.stream ?? (message.status ? `${message.status}\n` : ''));
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const raw of lines) this.line(raw.replace(/\r$/, '').replace(ANSI_COLOR, ''));
  }

  private line(line: string): void {
    if (!line.trim()) return;
    if (/^Step \d+\/\d+ :/.test(line)) {
      this.step = line;
      this.stepLines = [];
    } else {
      this.stepLines.push(line);
      if (this.stepLines.length > FAILED_STEP_LINES) this.stepLines.shift();
    }
    this.onLine?.(line);
  }

  /** The failing step, its last output lines and the engine's message. */
  failure(tag: string): GrexalError {
    const output = this.stepLines.map((l) => `    ${l}`).join('\n');
    const where = this.step ? ` at ${this.step}` : '';
    return new GrexalError(
      'E_IMAGE_BUILD_FAILED',
      `Building '${tag}' failed${where}: ${this.error}${output ? `\n  output:\n${output}` : ''}\n  Fix the step above (the Dockerfile or what it installs) and run \`grexal images build\` again.`,
      { details: { tag, step: this.step, error: this.error, output: this.stepLines } },
    );
  }
}

/** Resolves when the engine's JSON-lines stream ends; feeds each message to `onMessage`. */
function follow(docker: Dockerode, stream: NodeJS.ReadableStream, onMessage: (m: StreamMessage) => void) {
  return new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (error) => (error ? reject(error) : resolve()),
      (message: StreamMessage) => onMessage(message),
    );
  });
}

export async function buildImage(docker: Dockerode, options: BuildImageOptions): Promise<ImageInfo> {
  options.signal?.throwIfAborted();
  const log = new BuildLog(options.onProgress ? (line) => options.onProgress?.({ line }) : undefined);
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage(options.context, {
      t: options.tag,
      buildargs: options.buildArgs ?? {},
      labels: options.labels ?? {},
      rm: true,
      forcerm: true,
      abortSignal: options.signal,
    });
    await follow(docker, stream, (m) => log.push(m));
  } catch (error) {
    options.signal?.throwIfAborted();
    throw fromDockerError(error, { image: options.tag });
  }
  if (log.error !== undefined) throw log.failure(options.tag);
  const image = await inspectImage(docker, options.tag);
  if (!image) {
    throw new GrexalError(
      'E_IMAGE_BUILD_FAILED',
      `The engine finished building '${options.tag}' but has no such image.`,
    );
  }
  return image;
}

/** Splits `repo[:tag]` (a registry port's colon is not a tag). */
export function splitTag(reference: string): { repo: string; tag: string } {
  const colon = reference.lastIndexOf(':');
  if (colon > reference.lastIndexOf('/')) {
    return { repo: reference.slice(0, colon), tag: reference.slice(colon + 1) };
  }
  return { repo: reference, tag: 'latest' };
}

/** `docker import`: the root filesystem tar becomes the image `tag`. */
export async function importImage(
  docker: Dockerode,
  rootfs: Readable,
  tag: string,
  options: { signal?: AbortSignal } = {},
): Promise<ImageInfo> {
  options.signal?.throwIfAborted();
  const { repo, tag: version } = splitTag(tag);
  let error: string | undefined;
  try {
    const stream = await docker.importImage(rootfs, { repo, tag: version, abortSignal: options.signal });
    await follow(docker, stream, (m) => {
      if (m.error || m.errorDetail?.message) error = m.errorDetail?.message ?? m.error;
    });
  } catch (cause) {
    options.signal?.throwIfAborted();
    throw fromDockerError(cause, { image: tag });
  }
  if (error !== undefined) {
    throw new GrexalError(
      'E_IMAGE_BUILD_FAILED',
      `Importing the root filesystem as '${tag}' failed: ${error}`,
    );
  }
  const image = await inspectImage(docker, tag);
  if (!image)
    throw new GrexalError('E_IMAGE_BUILD_FAILED', `The engine imported '${tag}' but has no such image.`);
  return image;
}

export async function engineInfo(docker: Dockerode, endpoint: string): Promise<EngineInfo> {
  try {
    const [version, info] = await withDeadline('version and info', endpoint, (abortSignal) =>
      Promise.all([
        docker.version({ abortSignal } as never) as unknown as Promise<Dockerode.DockerVersion>,
        docker.info({ abortSignal } as never) as unknown as Promise<unknown>,
      ]),
    );
    const i = info as {
      Runtimes?: Record<string, unknown>;
      DefaultRuntime?: string;
      Driver?: string;
      DockerRootDir?: string;
    };
    return {
      endpoint,
      version: version.Version,
      apiVersion: version.ApiVersion,
      runtimes: Object.keys(i.Runtimes ?? {}).sort(),
      defaultRuntime: i.DefaultRuntime ?? 'runc',
      storageDriver: i.Driver ?? 'unknown',
      dataRoot: i.DockerRootDir ?? '',
    };
  } catch (error) {
    throw fromDockerError(error);
  }
}
