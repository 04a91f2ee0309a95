/** `serve`: the API listening on a host and port, refusing to face a network without a token. */
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { GrexalError } from '../errors.ts';
import { type BuildApiOptions, buildApi } from './app.ts';
import { isLoopbackHost } from './auth.ts';

export interface ServeOptions extends BuildApiOptions {
  /** Default 127.0.0.1. Anything but loopback needs `token`. */
  host?: string;
  /** Default 8787; 0 picks a free port. */
  port?: number;
  /** Origin that users reach this runner at, for takeover links. Default: the listening address. */
  publicUrl?: string;
  /** Aborting closes the server as `close()` does. */
  signal?: AbortSignal;
}

export interface ApiServer extends AsyncDisposable {
  readonly app: FastifyInstance;
  /** e.g. `http://127.0.0.1:8787`. */
  readonly url: string;
  readonly port: number;
  /** Refuses new work, destroys every sandbox, stops listening, closes the runner. Idempotent. */
  close(): Promise<void>;
}

export async function serve(options: ServeOptions): Promise<ApiServer> {
  const host = options.host ?? '127.0.0.1';
  if (!options.token && !isLoopbackHost(host)) {
    throw new GrexalError(
      'E_TOKEN_REQUIRED',
      `Refusing to serve on ${host} without a token: anyone who can reach it could run containers. Set GREXAL_RUNNER_TOKEN (e.g. \`export GREXAL_RUNNER_TOKEN=$(openssl rand -hex 32)\`), or serve on 127.0.0.1.`,
    );
  }
  const app = await buildApi(options);
  try {
    await app.listen({ host, port: options.port ?? 8787 });
  } catch (error) {
    await app.close();
    throw listenError(error, host, options.port ?? 8787);
  }
  const { port } = app.server.address() as AddressInfo;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const broker = options.takeover?.broker ?? options.runner.takeovers;
  if (broker && (options.publicUrl || !broker.hasBaseUrl())) broker.setBaseUrl(options.publicUrl ?? url);

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      try {
        await app.close();
      } finally {
        broker.close();
        await options.runner.close();
      }
    })();
    return closing;
  };
  options.signal?.addEventListener('abort', () => void close(), { once: true });
  if (options.signal?.aborted) await close();
  return { app, url, port, close, [Symbol.asyncDispose]: close };
}

function listenError(error: unknown, host: string, port: number): GrexalError {
  const code = (error as { code?: string }).code;
  const message = error instanceof Error ? error.message : String(error);
  const fix =
    code === 'EADDRINUSE'
      ? `Port ${port} is taken: stop what uses it or pass --port.`
      : code === 'EADDRNOTAVAIL'
        ? `${host} is not an address of this machine: pass --host 127.0.0.1 or one of its addresses.`
        : 'Check --host and --port.';
  return new GrexalError('E_LISTEN_FAILED', `Cannot listen on ${host}:${port} (${message}). ${fix}`, {
    cause: error,
  });
}
