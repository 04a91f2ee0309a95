/** The supervisor's bootstrap answer: what the agent runs with, and how the sandbox ends on its own. */
import type { BootstrapResult } from '../../sandbox-agent/protocol.ts';
import type { ResolvedSandboxOptions } from './options.ts';
import type { SandboxCredentials } from './ports.ts';

/**
 * How long the supervisor lets the agent run once its connection to this runner is gone and cannot
 * be made again. A live runner takes a reconnect at once, so this only has to ride over a dropped
 * connection, not a slow runner; a restarted runner never takes it (the sandbox is gone for it), so
 * an orphan stops after this much, its stop grace, and nothing more.
 */
export const RUNNER_GRACE_MS = 10_000;

const codedError = (code: string, message: string) => Object.assign(new Error(message), { code });

export interface BootstrapInput {
  sandboxId: string;
  options: ResolvedSandboxOptions;
  credentials?: Pick<SandboxCredentials, 'env' | 'filesTar'>;
  /** The supervisor's own argv: the image's CMD, used when the caller gave no command. */
  argv: string[];
  /** Epoch ms of the run's deadline. */
  deadlineAt: number;
  /** The supervisor's proof in `supervisor_resume` (runner/sandbox/live-connections.ts). */
  supervisorToken?: string;
}

export function bootstrapResult(input: BootstrapInput): BootstrapResult {
  const { options, credentials, argv } = input;
  const command = options.command ?? (argv.length > 0 ? argv : undefined);
  if (!command) {
    throw codedError('invalid_request', 'No command: pass one (grexal run -- CMD) or set CMD in the image.');
  }
  return {
    command,
    // The runner's own names last: validation refuses them in both, and this keeps them the runner's.
    env: { ...options.env, ...credentials?.env, HOME: '/home/agent', GREXAL_SANDBOX_ID: input.sandboxId },
    filesTar: credentials?.filesTar?.toString('base64'),
    stopTimeoutMs: options.stopTimeoutMs,
    // The supervisor ends the run by itself if this runner is not there to (docs/ctx-protocol.md).
    deadlineMs: Math.max(0, input.deadlineAt - Date.now()),
    runnerGraceMs: RUNNER_GRACE_MS,
    ...(input.supervisorToken === undefined ? {} : { supervisorToken: input.supervisorToken }),
  };
}
