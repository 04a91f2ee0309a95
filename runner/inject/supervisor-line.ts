/**
 * The runner's calls to the in-sandbox supervisor (sandbox-agent/wire.ts SUPERVISOR_METHODS), sent
 * on the supervisor's own ctx.sock connection, the one it keeps open after `started`. The runner
 * asks, the supervisor answers `{ id, result }` or `{ id, error }` on the same line; ids are the
 * runner's own (`runner-<n>`), so they never meet the ids of the supervisor's requests.
 */
import type { Socket } from 'node:net';
import type { SupervisorMethod } from '../../sandbox-agent/protocol.ts';
import { GrexalError } from '../errors.ts';

const ID_PREFIX = 'runner-';
/** Default per call: a rewrite of a few files in a tmpfs takes milliseconds. */
export const SUPERVISOR_CALL_TIMEOUT_MS = 15_000;

interface Pending {
  resolve: (result: unknown) => void;
  reject: (error: Error) => void;
}

const failed = (message: string): GrexalError => new GrexalError('E_CREDENTIAL_DELIVERY_FAILED', message);

export class SupervisorLine {
  private readonly pending = new Map<string, Pending>();
  private sequence = 0;

  constructor(readonly socket: Socket) {}

  async call(
    method: SupervisorMethod,
    params: unknown,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<unknown> {
    if (this.socket.destroyed) throw failed("The sandbox's supervisor is not connected.");
    const id = `${ID_PREFIX}${++this.sequence}`;
    const timeoutMs = options.timeoutMs ?? SUPERVISOR_CALL_TIMEOUT_MS;
    const timeout = AbortSignal.timeout(timeoutMs);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    return new Promise<unknown>((resolve, reject) => {
      const onAbort = (): void => {
        this.pending.delete(id);
        reject(
          timeout.aborted
            ? failed(`The sandbox's supervisor did not answer ${method} within ${timeoutMs} ms.`)
            : new GrexalError('E_ABORTED', `${method} was cancelled.`),
        );
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      const settle =
        <T>(next: (value: T) => void) =>
        (value: T): void => {
          signal.removeEventListener('abort', onAbort);
          next(value);
        };
      this.pending.set(id, { resolve: settle(resolve), reject: settle(reject) });
      this.socket.write(`${JSON.stringify({ id, method, params })}\n`);
    });
  }

  /** Takes an answer to one of our calls; false for anything else (a request of the supervisor's). */
  take(message: unknown): boolean {
    if (typeof message !== 'object' || message === null || 'method' in message) return false;
    const { id, result, error } = message as { id?: unknown; result?: unknown; error?: unknown };
    if (typeof id !== 'string' || !id.startsWith(ID_PREFIX)) return false;
    const pending = this.pending.get(id);
    if (!pending) return true;
    this.pending.delete(id);
    if (error === undefined) pending.resolve(result);
    else {
      // The supervisor's message names the file and the OS error, never file content.
      const text = (error as { message?: unknown } | null)?.message;
      pending.reject(failed(`The sandbox's supervisor refused: ${String(text).slice(0, 500)}`));
    }
    return true;
  }

  /** The connection closed: every call waiting for an answer fails. */
  close(): void {
    for (const pending of this.pending.values())
      pending.reject(failed("The sandbox's supervisor closed its connection before answering."));
    this.pending.clear();
  }
}
