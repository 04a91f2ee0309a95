/**
 * Deadlines and stream endings for engine calls. A short call (create, start, inspect, remove, …)
 * gets a deadline; the long-lived ones (a container's wait and attach streams) are bounded by the
 * engine watch instead, and a stream that closes without its answer is told apart from an answer.
 */
import type Dockerode from 'dockerode';
import { GrexalError } from '../errors.ts';

/** The deadline of a short engine call. */
export const ENGINE_CALL_TIMEOUT_MS = 30_000;

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

/** True when the engine did not answer at all (socket refused, reset or closed mid-answer). */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (e?.code && CONNECTION_CODES.has(e.code)) return true;
  return /socket hang up|^aborted$/i.test(e?.message ?? '');
}

export function describeFailure(error: unknown): string {
  const e = error as { code?: string; message?: string } | null;
  return e?.code ?? e?.message ?? String(error);
}

/**
 * Runs `call` with a signal that aborts after `timeoutMs` (or with `outer`), and rejects at the
 * deadline even if the call ignores its signal (dockerode drops it for some calls, such as an
 * image's inspect). The timer stops once the call answers, so a stream it returns is never cut.
 */
export async function withDeadline<T>(
  what: string,
  endpoint: string,
  call: (signal: AbortSignal) => Promise<T>,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? ENGINE_CALL_TIMEOUT_MS;
  const controller = new AbortController();
  const signal = options.signal ? AbortSignal.any([options.signal, controller.signal]) : controller.signal;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      // Rejected before the abort, so the race reports the deadline, not the aborted call.
      reject(
        new GrexalError(
          'E_TIMEOUT',
          `The Docker engine at ${endpoint} did not answer ${what} within ${Math.round(timeoutMs / 1000)} s. Run \`grexal doctor\` to check it.`,
        ),
      );
      controller.abort();
    }, timeoutMs);
  });
  const answer = call(signal);
  // Whatever the call does after the deadline is of no interest; it must not go unhandled.
  answer.catch(() => {});
  try {
    return await Promise.race([answer, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `POST /containers/{id}/wait`, read as a stream: the engine sends the headers at once and the
 * body at the exit. dockerode's own wait never settles when the socket closes in between (Node
 * emits the response's `error` only to listeners, and it has none), which is how a killed dockerd
 * used to hang the runner. Rejects with code ECONNRESET when the stream closes without the body.
 */
export function waitForExit(
  modem: Dockerode['modem'],
  containerId: string,
  signal: AbortSignal,
): Promise<number> {
  return new Promise((resolve, reject) => {
    modem.dial(
      {
        path: `/containers/${encodeURIComponent(containerId)}/wait?`,
        method: 'POST',
        isStream: true,
        abortSignal: signal,
        statusCodes: { 200: true, 400: 'bad parameter', 404: 'no such container', 500: 'server error' },
        options: { _query: { condition: 'not-running' }, _body: {} },
      },
      (error: unknown, result: unknown) => {
        if (error || !result) return reject(error ?? new Error('no answer'));
        const response = result as NodeJS.ReadableStream;
        const chunks: Buffer[] = [];
        let ended = false;
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', (e: Error) => reject(e));
        response.on('end', () => {
          ended = true;
          try {
            const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { StatusCode?: unknown };
            if (typeof body.StatusCode !== 'number') throw new Error('no StatusCode');
            resolve(body.StatusCode);
          } catch {
            reject(Object.assign(new Error('the wait answer was cut short'), { code: 'ECONNRESET' }));
          }
        });
        response.on('close', () => {
          if (!ended)
            reject(
              Object.assign(new Error('the wait stream closed before the exit'), { code: 'ECONNRESET' }),
            );
        });
      },
    );
  });
}

/**
 * Whether the engine sent the container a signal (a `kill` event) since `sinceSeconds`: its own
 * shutdown, or an operator's `docker stop`. An agent that killed itself has none. Reads the
 * engine's recent events up to now (a bounded call, not a stream); undefined when it cannot tell.
 */
export async function engineSignalled(
  docker: Dockerode,
  endpoint: string,
  containerId: string,
  sinceSeconds: number,
): Promise<boolean | undefined> {
  try {
    // Fractional seconds, now: an `until` in the future would hold the answer until then.
    const until = (Date.now() / 1000).toFixed(3);
    const body = await withDeadline(
      'events',
      endpoint,
      async (abortSignal) => {
        const stream = (await docker.getEvents({
          since: String(sinceSeconds),
          until,
          filters: { container: [containerId], event: ['kill'] },
          abortSignal,
        } as unknown as Dockerode.GetEventsOptions)) as NodeJS.ReadableStream;
        const chunks: Buffer[] = [];
        for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
        return Buffer.concat(chunks).toString('utf8');
      },
      { timeoutMs: 5_000 },
    );
    return body.split('\n').some((line) => /"(?:Action|status)":"kill"/.test(line));
  } catch {
    return undefined;
  }
}

/** The waits between attempts to freeze a container: a busy host can keep a cgroup from freezing. */
const FREEZE_RETRY_DELAYS_MS = [50, 150, 400];

/**
 * Runs `pause` again when the runtime could not freeze the container in time (runc gives up with
 * "unable to freeze" when a process does not stop within its short poll, as happens on a loaded
 * host); any other error, or the last attempt's, goes back to the caller.
 */
export async function pauseWithRetries(
  pause: () => Promise<void>,
  delaysMs: readonly number[] = FREEZE_RETRY_DELAYS_MS,
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await pause();
    } catch (error) {
      const delay = delaysMs[attempt];
      if (delay === undefined || !/unable to freeze|freezing/i.test(String((error as Error)?.message)))
        throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
