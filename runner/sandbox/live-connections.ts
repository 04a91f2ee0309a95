/**
 * A running sandbox's connections as they change: new and removed credentials from the
 * orchestrator (through runner/inject), their files through the supervisor's connection on
 * ctx.sock, and the token by which the supervisor takes that connection back after a reconnect.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { GrexalError } from '../errors.ts';
import type { CtxServer } from '../inject/index.ts';
import { connectionForChange } from '../inject/index.ts';
import type { LiveFiles, SandboxCredentials } from './ports.ts';

export type LivePhase = 'starting' | 'running' | 'ended';

export class LiveConnections {
  /** Sent in the bootstrap; the supervisor presents it in `supervisor_resume`. */
  readonly supervisorToken = randomBytes(24).toString('hex');

  constructor(
    /** A pool entry's credentials arrive at its claim: read them when a change comes. */
    private readonly credentials: () => SandboxCredentials | undefined,
    private readonly phase: () => LivePhase,
    private readonly server: () => CtxServer | undefined,
  ) {}

  resumes(token: string): boolean {
    const given = Buffer.from(token);
    const ours = Buffer.from(this.supervisorToken);
    return given.length === ours.length && timingSafeEqual(given, ours);
  }

  update(connectionId: string, credential: unknown): Promise<{ restored: boolean }> {
    return this.credentialsFor(connectionId).update(connectionId, credential, this.files());
  }

  remove(connectionId: string): Promise<void> {
    return this.credentialsFor(connectionId).remove(connectionId, this.files());
  }

  private credentialsFor(connectionId: string): SandboxCredentials {
    const phase = this.phase();
    if (phase === 'ended')
      throw new GrexalError(
        'E_SANDBOX_ENDED',
        'The sandbox has ended; its connections can no longer change. Create a new sandbox with the new credential.',
      );
    // A sandbox without a manifest declares nothing: the same answer as an undeclared id.
    const credentials = this.credentials();
    if (!credentials) connectionForChange(new Map(), connectionId);
    return credentials as SandboxCredentials;
  }

  private files(): LiveFiles {
    // Asked only once the change is validated, so bad input is refused as such in every phase.
    const call = async (method: 'files_replace' | 'files_remove', params: object): Promise<void> => {
      if (this.phase() === 'starting')
        throw new GrexalError(
          'E_SANDBOX_STARTING',
          "The sandbox's agent has not started yet, so its files cannot change safely; nothing changed. Retry once the sandbox's state is running.",
        );
      const server = this.server();
      if (!server) throw new GrexalError('E_SANDBOX_ENDED', 'The sandbox has ended.');
      await server.callSupervisor(method, params);
    };
    return {
      replace: (connectionId, filesTar) =>
        call('files_replace', { connectionId, filesTar: filesTar.toString('base64') }),
      remove: (connectionId) => call('files_remove', { connectionId }),
    };
  }
}
