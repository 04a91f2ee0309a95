/**
 * The agent's supervisor, running inside the sandbox under tini: it takes the bootstrap from the
 * runner, lays out the credential files, starts the desktop when asked, spawns the agent with its
 * environment, and mirrors the agent's exit. Only the agent process and its children ever hold the
 * injected variables: tini (pid 1) and this process keep the container's own environment.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { BootstrapResult } from './protocol.ts';

export interface AgentExit {
  code: number;
}

/** What the supervisor needs beyond the bootstrap: hooks that run before the agent starts. */
export interface SupervisorHooks {
  /** Returns extra environment for the agent (e.g. DISPLAY and GREXAL_CDP_URL of the desktop). */
  prepare?: (bootstrap: BootstrapResult) => Promise<Record<string, string>>;
  onStarted?: (info: { pid?: number; error?: string }) => void;
  log: (line: string) => void;
}

function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  return 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}

function spawnError(command: string, error: NodeJS.ErrnoException): AgentExit & { message: string } {
  if (error.code === 'ENOENT') return { code: 127, message: `command not found: ${command}` };
  if (error.code === 'EACCES') return { code: 126, message: `permission denied: ${command}` };
  return { code: 126, message: `cannot start ${command}: ${error.message}` };
}

/**
 * Runs the agent to completion. On SIGTERM the agent's process group gets SIGTERM, then SIGKILL
 * after `stopTimeoutMs`, so a stuck agent cannot hold the sandbox open.
 */
export async function superviseAgent(bootstrap: BootstrapResult, hooks: SupervisorHooks): Promise<AgentExit> {
  const extraEnv = hooks.prepare ? await hooks.prepare(bootstrap) : {};
  const [file, ...args] = bootstrap.command as [string, ...string[]];
  const env = { ...process.env, ...bootstrap.env, ...extraEnv };
  let child: ChildProcess;
  try {
    // detached: the agent leads its own process group, so signals reach its children too.
    child = spawn(file, args, { env, cwd: bootstrap.cwd, stdio: 'inherit', detached: true });
  } catch (error) {
    const failed = spawnError(file, error as NodeJS.ErrnoException);
    hooks.log(failed.message);
    hooks.onStarted?.({ error: failed.message });
    return failed;
  }
  return new Promise<AgentExit>((resolve) => {
    let killTimer: NodeJS.Timeout | undefined;
    const signalGroup = (signal: NodeJS.Signals): void => {
      try {
        if (child.pid) process.kill(-child.pid, signal);
      } catch {
        // The group is already gone.
      }
    };
    const onTerm = (): void => {
      signalGroup('SIGTERM');
      killTimer ??= setTimeout(() => signalGroup('SIGKILL'), bootstrap.stopTimeoutMs);
    };
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onTerm);
    child.once('spawn', () => hooks.onStarted?.({ pid: child.pid }));
    child.once('error', (error) => {
      const failed = spawnError(file, error as NodeJS.ErrnoException);
      hooks.log(failed.message);
      hooks.onStarted?.({ error: failed.message });
      resolve(failed);
    });
    child.once('exit', (code, signal) => {
      clearTimeout(killTimer);
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onTerm);
      // Orphans the agent left behind in its group go with it.
      signalGroup('SIGKILL');
      resolve({ code: exitCodeOf(code, signal) });
    });
  });
}
