/**
 * `grexal dev --env NAME=VALUE` (repeatable): non-secret environment for the agent, such as a
 * task's inputs or the URL of a site the developer serves on their machine (the demo's login site
 * in a local-browser run). Credentials come from the connections file, never from here: the value
 * shows in the developer's shell history and is not masked.
 */
import { type Problem, ValidationError } from '../errors.ts';
import { isReservedEnvName } from '../inject/index.ts';

/** The sandbox options' rule for env names (runner/sandbox/options.ts). */
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The flags as an env record; a malformed or reserved name is refused with every problem named. */
export function parseEnvFlags(flags: readonly string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  const problems: Problem[] = [];
  for (const [i, flag] of (flags ?? []).entries()) {
    const path = `--env[${i}]`;
    const equals = flag.indexOf('=');
    const name = equals === -1 ? flag : flag.slice(0, equals);
    if (equals === -1 || !NAME.test(name))
      problems.push({
        code: 'E_ENV_NAME_INVALID',
        path,
        message: `Not NAME=VALUE (NAME of letters, digits and _): ${JSON.stringify(flag)}.`,
        fix: 'Write it as --env NAME=VALUE, e.g. --env DEMO_LOGIN_URL=http://127.0.0.1:8080/login.',
      });
    else if (isReservedEnvName(name))
      problems.push({
        code: 'E_ENV_NAME_RESERVED',
        path,
        message: `Env name ${name} belongs to the runner, the shell or a loader.`,
        fix: 'Choose another name; see docs/ctx-protocol.md for the reserved list.',
      });
    else env[name] = flag.slice(equals + 1);
  }
  if (problems.length > 0) throw new ValidationError(problems, 'flags');
  return env;
}
