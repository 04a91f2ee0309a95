import { GrexalError } from '../errors.ts';

interface DockerodeError {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | null;
  reason?: string;
  message?: string;
}

function engineMessage(error: DockerodeError): string {
  return (error.json?.message ?? error.reason ?? error.message ?? 'unknown engine error').trim();
}

/** Translates dockerode's errors where they enter: callers only ever see GrexalError codes. */
export function fromDockerError(
  error: unknown,
  context: { image?: string; runtime?: string } = {},
): GrexalError {
  if (error instanceof GrexalError) return error;
  const e = (error ?? {}) as DockerodeError;
  const message = engineMessage(e);
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT' || e.code === 'EACCES') {
    return new GrexalError(
      'E_ENGINE_UNREACHABLE',
      `The Docker engine stopped answering (${e.code}). Run \`grexal doctor --fix\` or start Docker.`,
      { cause: error },
    );
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 300 && e.statusCode < 400) {
    return new GrexalError(
      'E_ENGINE',
      `The Docker engine answered with a redirect (HTTP ${e.statusCode}); the runner never follows one. Check that DOCKER_HOST names a Docker engine, not a proxy, and that the request named a valid image.`,
      { cause: error },
    );
  }
  if (context.image && e.statusCode === 404 && /no such image/i.test(message)) {
    return new GrexalError(
      'E_IMAGE_NOT_FOUND',
      `Image '${context.image}' is not in the engine. Run \`grexal images build\` (or build/pull '${context.image}').`,
      { cause: error },
    );
  }
  if (context.runtime && /runtime/i.test(message)) {
    return new GrexalError(
      'E_RUNTIME_NOT_FOUND',
      `Runtime '${context.runtime}' is not registered with the engine (${message}). Run \`grexal doctor --fix\` to register runsc, or drop the runtime option.`,
      { cause: error },
    );
  }
  return new GrexalError('E_ENGINE', `The Docker engine refused: ${message}`, { cause: error });
}

export function isNotFound(error: unknown): boolean {
  return (error as DockerodeError | null)?.statusCode === 404;
}

/** 304: already stopped/started; 409: removal already in progress. */
export function isHarmlessConflict(error: unknown): boolean {
  const status = (error as DockerodeError | null)?.statusCode;
  return status === 304 || status === 409;
}
