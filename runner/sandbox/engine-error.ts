import { GrexalError } from '../errors.ts';

/** The error an engine end is reported with: the endpoint, what was seen, and the fix. */
export function engineError(
  kind: 'lost' | 'stopped' | 'killed',
  endpoint: string,
  detail: string,
  exitCode: number,
): GrexalError {
  if (kind === 'killed') {
    return new GrexalError(
      'E_SANDBOX_KILLED',
      `The sandbox's container was stopped or killed from outside the runner, through the Docker engine at ${endpoint} (${detail}; exit ${exitCode}): someone ran \`docker stop\` or \`docker kill\` on it. Stop sandboxes through the runner (DELETE /v1/sandboxes/<id>, Ctrl-C) so the agent gets its grace; rerun.`,
      { details: { endpoint, exitCode } },
    );
  }
  if (kind === 'stopped') {
    return new GrexalError(
      'E_ENGINE_STOPPED',
      `The Docker engine at ${endpoint} shut down while the sandbox ran: it stopped the sandbox (exit ${exitCode}) and went away (${detail}). Start it again (\`grexal doctor --fix\`) and rerun.`,
      { details: { endpoint, exitCode } },
    );
  }
  return new GrexalError(
    'E_ENGINE_LOST',
    `The Docker engine at ${endpoint} went away while the sandbox ran (${detail}); its container is removed once the engine answers again (by this runner, or by the next one to start). Run \`grexal doctor --fix\` or start Docker, then rerun.`,
    { details: { endpoint } },
  );
}
