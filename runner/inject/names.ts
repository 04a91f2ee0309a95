/**
 * Name rules shared by the manifest and credential schemas. Connection ids and file names become
 * path components under /tmp/grexal, so both are plain names by construction.
 */
export { CONNECTION_ID_PATTERN, FILE_NAME_PATTERN } from '../../sandbox-agent/protocol.ts';

export const FIELD_KEY_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
export const ENV_NAME_PATTERN = /^[A-Z_][A-Z0-9_]{0,127}$/;

/**
 * Env names a connection may not set. They belong to the runner (`GREXAL_*`), to the process's
 * identity and shell (`PATH`, `HOME`, `IFS`, `BASH_ENV`, …), or make a loader or interpreter run
 * code named by the value (`LD_*`, `NODE_OPTIONS`, `PYTHON*`, `PERL5OPT`, `JAVA_TOOL_OPTIONS`, …):
 * a user's credential must never decide what code the sandbox runs.
 */
export const RESERVED_ENV_NAMES: ReadonlySet<string> = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'PWD',
  'OLDPWD',
  'HOSTNAME',
  'TERM',
  'TMPDIR',
  'LANG',
  'LANGUAGE',
  'TZ',
  'DISPLAY',
  'XAUTHORITY',
  'IFS',
  'ENV',
  'BASH_ENV',
  'SHELLOPTS',
  'BASHOPTS',
  'CDPATH',
  'GLOBIGNORE',
  'PS4',
  'PROMPT_COMMAND',
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_REPL_EXTERNAL_MODULE',
  'PERLLIB',
  'PERL5LIB',
  'PERL5OPT',
  'RUBYLIB',
  'RUBYOPT',
  'JAVA_TOOL_OPTIONS',
  'JDK_JAVA_OPTIONS',
  '_JAVA_OPTIONS',
  'GCONV_PATH',
  'MALLOC_CHECK_',
]);

/** Prefixes reserved as a family: the runner's own, the dynamic loader's, Python's, locale. */
export const RESERVED_ENV_PREFIXES: readonly string[] = [
  'GREXAL_',
  'LD_',
  'DYLD_',
  'PYTHON',
  'BASH_FUNC_',
  'LC_',
];

export function isReservedEnvName(name: string): boolean {
  return RESERVED_ENV_NAMES.has(name) || RESERVED_ENV_PREFIXES.some((prefix) => name.startsWith(prefix));
}

/** `file:<name>` in an env mapping means "the path of that file", not a field's value. */
export const FILE_REF_PREFIX = 'file:';
