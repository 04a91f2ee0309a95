/** How a sandbox's end is told from the engine's exit status. */
import type { GrexalError } from '../errors.ts';
import type { ExitStatus } from '../runtime/index.ts';
import { engineError } from './engine-error.ts';
import type { ExitReason, SandboxExit } from './events.ts';

export interface ExitContext {
  /** The reason of a destroy under way, if one is. */
  ending?: ExitReason;
  /** When the run's deadline falls, if it has one. */
  deadlineAt?: number;
}

const ENGINE_REASONS = { lost: 'engine_lost', stopped: 'engine_stopped', killed: 'killed' } as const;

/**
 * The engine's own end wins over a destroy under way (the container's fate is the engine's
 * then); the cgroup's OOM record wins over the exit code, whatever the code. An exit nobody asked
 * for past the deadline is the supervisor's own enforcement of it (its timer can beat ours by the
 * time the bootstrap took to arrive), so it is a timeout all the same.
 */
export function classifyExit(
  status: ExitStatus,
  exitedAt: number,
  context: ExitContext,
): { exit: SandboxExit; engineError?: GrexalError } {
  const { exitCode, oomKilled, engine } = status;
  if (engine) {
    const error = engineError(engine.kind, engine.endpoint, engine.detail, exitCode);
    const reason = ENGINE_REASONS[engine.kind];
    return { exit: { exitCode, reason, oomKilled, message: error.message }, engineError: error };
  }
  const timedOut = context.deadlineAt !== undefined && exitedAt >= context.deadlineAt;
  const reason = context.ending ?? (oomKilled ? 'oom' : timedOut ? 'timeout' : 'exited');
  return { exit: { exitCode, reason, oomKilled } };
}
