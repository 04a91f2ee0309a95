/**
 * One pass over a manifest and its credentials that finds every problem at once: the manifest's
 * own, each credential's against its connection, the file caps, and the required connections
 * left without a credential.
 */
import { GrexalError, type Problem, ValidationError } from '../errors.ts';
import { formatPath, parseOrThrow } from '../validation.ts';
import { type CheckedCredentials, checkCredentials, type ParsedCredential } from './check-credentials.ts';
import { PROBLEM_CODES } from './problem-codes.ts';
import { type Connection, connectionSchema, isRequired, manifestSchema } from './schemas.ts';
import { secretInputFileContent } from './secret-input-file.ts';

export interface ValidatedInput {
  connections: Connection[];
  credentials: Map<string, ParsedCredential>;
}

function parseManifest(manifest: unknown): { connections: Connection[]; problems: Problem[] } {
  try {
    return { connections: parseOrThrow(manifestSchema, manifest, 'manifest').connections, problems: [] };
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    // zod reports an unknown discriminator generically; name the rule.
    const problems = error.problems.map((p) =>
      p.code === 'E_FIELD_INVALID' && /^connections\[\d+\]\.mode$/.test(p.path)
        ? { ...p, code: 'E_CONNECTION_MODE_INVALID', fix: PROBLEM_CODES.E_CONNECTION_MODE_INVALID.fix }
        : p,
    );
    // Credentials for the connections that did parse can still be checked in the same answer.
    const raw = (manifest as { connections?: unknown } | null)?.connections;
    const connections = Array.isArray(raw)
      ? raw.flatMap((c) => {
          const parsed = connectionSchema.safeParse(c);
          return parsed.success ? [parsed.data] : [];
        })
      : [];
    return { connections, problems };
  }
}

/** Ids the raw manifest names, valid or not: a credential for one of them is not "undeclared". */
function rawIds(manifest: unknown): Set<string> {
  const raw = (manifest as { connections?: unknown } | null)?.connections;
  if (!Array.isArray(raw)) return new Set();
  return new Set(
    raw.map((c) => (c as { id?: unknown } | null)?.id).filter((id): id is string => typeof id === 'string'),
  );
}

function totalFileBytes(
  connections: readonly Connection[],
  credentials: Map<string, ParsedCredential>,
): number {
  let total = 0;
  for (const c of connections) {
    const cred = credentials.get(c.id);
    if (cred?.mode === 'file_upload') for (const content of cred.files.values()) total += content.length;
    if (cred?.mode === 'secret_input' && c.mode === 'secret_input' && c.file) {
      total += secretInputFileContent(cred.fields).length;
    }
  }
  return total;
}

function missingRequired(
  connections: readonly Connection[],
  checked: CheckedCredentials,
  raw: unknown,
): Connection[] {
  const given = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  // A credential that was sent but refused is reported as such, not also as missing. Own keys
  // only: a connection named `constructor` must not find Object.prototype's.
  return connections.filter(
    (c) =>
      isRequired(c) &&
      c.mode !== 'browser_login' &&
      !checked.credentials.has(c.id) &&
      (!Object.hasOwn(given, c.id) || given[c.id] === undefined),
  );
}

function missingProblems(missing: readonly Connection[]): Problem[] {
  return missing.map((c) => ({
    code: 'E_CREDENTIAL_MISSING',
    path: formatPath(['credentials', c.id]),
    message: `Required connection ${c.id} (${c.mode}) has no credential.`,
    fix: PROBLEM_CODES.E_CREDENTIAL_MISSING.fix,
  }));
}

/**
 * Throws ValidationError listing every problem, or GrexalError E_MISSING_CREDENTIALS when the
 * input is sound but required connections have no credential.
 */
export function validateInjectionInput(
  manifest: unknown,
  rawCredentials: unknown,
  maxTotalFileBytes: number,
): ValidatedInput {
  const { connections, problems } = parseManifest(manifest);
  const declaredIds = problems.length > 0 ? rawIds(manifest) : new Set<string>();
  const checked = checkCredentials(connections, rawCredentials);
  problems.push(
    ...checked.problems.filter(
      (p) =>
        !(
          p.code === 'E_CREDENTIAL_UNDECLARED' &&
          [...declaredIds].some((id) => p.path === formatPath(['credentials', id]))
        ),
    ),
  );
  const total = totalFileBytes(connections, checked.credentials);
  if (total > maxTotalFileBytes) {
    problems.push({
      code: 'E_FILES_TOTAL_TOO_LARGE',
      path: 'credentials',
      message: `Files total ${total} bytes; the cap is ${maxTotalFileBytes}.`,
      fix: PROBLEM_CODES.E_FILES_TOTAL_TOO_LARGE.fix,
    });
  }
  const missing = missingRequired(connections, checked, rawCredentials);
  if (problems.length > 0) {
    throw new ValidationError([...problems, ...missingProblems(missing)], 'connections or credentials');
  }
  if (missing.length > 0) {
    const ids = missing.map((c) => c.id).join(', ');
    throw new GrexalError(
      'E_MISSING_CREDENTIALS',
      `Required connection(s) have no credential: ${ids}. Provide a credential for each, or mark it "required": false.`,
      { details: missingProblems(missing) },
    );
  }
  return { connections, credentials: checked.credentials };
}
