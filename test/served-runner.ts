/**
 * A runner served over HTTP for one test file, the way the orchestrator meets it: started before
 * the file's tests and closed after them. A failing test prints the ids of the sandboxes it
 * pushed to `created`, so whatever it left can be found.
 */
import type pino from 'pino';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type ApiServer, Runner, RunnerClient, serve } from '../runner/index.ts';
import { newStateDir, removeStateDir } from './helpers.ts';

export interface ServedRunnerOptions {
  token: string;
  /** The API's cap on live sandboxes. Default: serve's own. */
  maxSandboxes?: number;
  /** Called once, before the runner starts: the logger for the runner and the server. */
  logger?: () => pino.Logger;
}

export interface ServedRunner {
  readonly stateDir: string;
  readonly runner: Runner;
  readonly server: ApiServer;
  readonly client: RunnerClient;
  /** Ids of the sandboxes the running test created; emptied after each test. */
  readonly created: string[];
}

/** Registers the file's hooks; the fields are set once `beforeAll` has run. */
export function useServedRunner(options: ServedRunnerOptions): ServedRunner {
  const fixture = { created: [] as string[] } as {
    -readonly [K in keyof ServedRunner]: ServedRunner[K];
  };
  beforeAll(async () => {
    const logger = options.logger?.();
    fixture.stateDir = await newStateDir();
    fixture.runner = await Runner.start({ stateDir: fixture.stateDir, ...(logger && { logger }) });
    fixture.server = await serve({
      runner: fixture.runner,
      token: options.token,
      port: 0,
      ...(options.maxSandboxes !== undefined && { maxSandboxes: options.maxSandboxes }),
      ...(logger && { logger }),
    });
    fixture.client = new RunnerClient({ baseUrl: fixture.server.url, token: options.token });
  });
  afterEach((context) => {
    if (context.task.result?.state === 'fail') {
      console.error(`sandboxes of this test: ${fixture.created.join(', ')}`);
    }
    fixture.created.length = 0;
  });
  afterAll(async () => {
    await fixture.server?.close();
    if (fixture.stateDir) await removeStateDir(fixture.stateDir);
  });
  return fixture;
}
