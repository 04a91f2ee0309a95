/**
 * NODE_EXTRA_CA_CERTS held back by the `grexal` launcher (bin/grexal): Node 20 parses that file at
 * every start, before any JavaScript runs, and `grexal run` against a local engine makes no TLS
 * connection, so the launcher starts Node without it and hands the value over in
 * GREXAL_HELD_EXTRA_CA_CERTS. The CLI puts it back before anything else, so that what it spawns
 * (helpers, mount, a dockerd) sees the user's variable exactly as it was set. Node itself reads the
 * variable only at its start: a command that may make TLS from its own process must never be held
 * (the launcher keeps it for every other command, and for an engine over tcp://).
 * Standard library only: the CLI's launcher runs it before loading the CLI's bundle.
 */

export const HELD_EXTRA_CA_CERTS = 'GREXAL_HELD_EXTRA_CA_CERTS';

/**
 * Restores a held NODE_EXTRA_CA_CERTS into `env` and removes the hand-over variable; true when it
 * did. A value set in `env` meanwhile wins (nothing sets one; the user's is the held one).
 */
export function restoreExtraCaCerts(env: NodeJS.ProcessEnv = process.env): boolean {
  const held = env[HELD_EXTRA_CA_CERTS];
  if (held === undefined) return false;
  delete env[HELD_EXTRA_CA_CERTS];
  env['NODE_EXTRA_CA_CERTS'] ??= held;
  return true;
}
