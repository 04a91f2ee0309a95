/**
 * Checks a credentials payload against the manifest it is for, and turns it into the runner's
 * own form: every value a Secret, every file decoded. Problems never quote a credential value.
 */
import { type Problem, ValidationError } from '../errors.ts';
import { formatPath, parseOrThrow } from '../validation.ts';
import {
  fileUploadCredentialSchema,
  MAX_VALUE_LENGTH,
  MIN_SECRET_LENGTH,
  oauthRedirectCredentialSchema,
  secretInputCredentialSchema,
} from './credentials-schema.ts';
import { PROBLEM_CODES, type ProblemCode } from './problem-codes.ts';
import type { Connection, FileUploadConnection, SecretInputConnection } from './schemas.ts';
import { Secret } from './secret.ts';

export type ParsedCredential =
  | { mode: 'secret_input'; fields: Map<string, Secret> }
  | {
      mode: 'oauth_redirect';
      accessToken: Secret;
      refreshToken: Secret | undefined;
      expiresAt: number | null;
      tokenType: string;
      scope: string | null;
    }
  | { mode: 'file_upload'; files: Map<string, Buffer> };

export interface CheckedCredentials {
  credentials: Map<string, ParsedCredential>;
  problems: Problem[];
}

/** Below this an `expires_at` is surely epoch seconds, not milliseconds (1973 in ms). */
const EPOCH_MS_FLOOR = 100_000_000_000;

class Problems {
  readonly list: Problem[] = [];
  add(code: ProblemCode, path: PropertyKey[], message: string): void {
    this.list.push({ code, path: formatPath(path), message, fix: PROBLEM_CODES[code].fix });
  }
}

function shape<T>(
  schema: { safeParse(v: unknown): unknown },
  input: unknown,
  path: PropertyKey[],
  out: Problems,
) {
  try {
    return parseOrThrow(schema as never, input, 'credentials', formatPath(path)) as T;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    out.list.push(...error.problems);
    return undefined;
  }
}

/** The mode a payload's shape suggests, to name a wrong-mode payload as such. */
function modeOfShape(value: unknown): Connection['mode'] | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  if ('fields' in value) return 'secret_input';
  if ('access_token' in value) return 'oauth_redirect';
  if ('files' in value) return 'file_upload';
  return undefined;
}

function checkValue(value: string, secret: boolean, path: PropertyKey[], out: Problems): boolean {
  if (value.length === 0 || value.length > MAX_VALUE_LENGTH || value.includes('\0')) {
    out.add(
      'E_CREDENTIAL_VALUE_INVALID',
      path,
      `Value is empty, over ${MAX_VALUE_LENGTH} characters, or contains NUL.`,
    );
    return false;
  }
  if (secret && value.length < MIN_SECRET_LENGTH) {
    out.add(
      'E_SECRET_TOO_SHORT',
      path,
      `Secret value has ${value.length} character(s); at least ${MIN_SECRET_LENGTH} are required.`,
    );
    return false;
  }
  return true;
}

function secretInput(
  c: SecretInputConnection,
  raw: unknown,
  path: PropertyKey[],
  out: Problems,
): ParsedCredential | undefined {
  const parsed = shape<{ fields: Record<string, string> }>(secretInputCredentialSchema, raw, path, out);
  if (!parsed) return undefined;
  const before = out.list.length;
  const fields = new Map<string, Secret>();
  for (const decl of c.fields) {
    // Own keys only: a field declared as `__proto__` must not read Object.prototype.
    const value = Object.hasOwn(parsed.fields, decl.key) ? parsed.fields[decl.key] : undefined;
    const at = [...path, 'fields', decl.key];
    if (value === undefined) out.add('E_CREDENTIAL_FIELD_MISSING', at, `Field ${decl.key} is missing.`);
    else if (checkValue(value, decl.secret !== false, at, out)) fields.set(decl.key, new Secret(value));
  }
  for (const key of Object.keys(parsed.fields)) {
    if (!c.fields.some((f) => f.key === key)) {
      out.add(
        'E_CREDENTIAL_FIELD_UNKNOWN',
        [...path, 'fields', key],
        `Field ${JSON.stringify(key)} is not declared.`,
      );
    }
  }
  return out.list.length === before ? { mode: 'secret_input', fields } : undefined;
}

function oauthRedirect(raw: unknown, path: PropertyKey[], out: Problems): ParsedCredential | undefined {
  const parsed = shape<{
    access_token: string;
    refresh_token?: string;
    expires_at?: number;
    token_type?: string;
    scope?: string;
  }>(oauthRedirectCredentialSchema, raw, path, out);
  if (!parsed) return undefined;
  let ok = checkValue(parsed.access_token, true, [...path, 'access_token'], out);
  if (parsed.refresh_token !== undefined)
    ok = checkValue(parsed.refresh_token, true, [...path, 'refresh_token'], out) && ok;
  if (parsed.expires_at !== undefined && parsed.expires_at < EPOCH_MS_FLOOR) {
    out.add(
      'E_CREDENTIAL_VALUE_INVALID',
      [...path, 'expires_at'],
      `expires_at ${parsed.expires_at} looks like epoch seconds; send epoch milliseconds.`,
    );
    ok = false;
  }
  if (!ok) return undefined;
  return {
    mode: 'oauth_redirect',
    accessToken: new Secret(parsed.access_token),
    refreshToken: parsed.refresh_token === undefined ? undefined : new Secret(parsed.refresh_token),
    expiresAt: parsed.expires_at ?? null,
    tokenType: parsed.token_type ?? 'Bearer',
    scope: parsed.scope ?? null,
  };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Decodes strict base64 (line breaks allowed); undefined when it is not base64. */
export function decodeBase64(text: string): Buffer | undefined {
  const compact = text.replace(/[\r\n\t ]/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) return undefined;
  return Buffer.from(compact, 'base64');
}

function fileUpload(
  c: FileUploadConnection,
  raw: unknown,
  path: PropertyKey[],
  out: Problems,
): ParsedCredential | undefined {
  const parsed = shape<{ files: Record<string, { base64: string }> }>(
    fileUploadCredentialSchema,
    raw,
    path,
    out,
  );
  if (!parsed) return undefined;
  const before = out.list.length;
  const files = new Map<string, Buffer>();
  for (const decl of c.files) {
    const at = [...path, 'files', decl.name];
    const entry = Object.hasOwn(parsed.files, decl.name) ? parsed.files[decl.name] : undefined;
    if (entry === undefined) {
      out.add('E_FILE_MISSING', at, `File ${decl.name} is missing.`);
      continue;
    }
    const content = decodeBase64(entry.base64);
    if (content === undefined)
      out.add('E_FILE_BASE64_INVALID', [...at, 'base64'], `File ${decl.name} is not valid base64.`);
    else if (content.length === 0) out.add('E_FILE_EMPTY', at, `File ${decl.name} is empty.`);
    else if (decl.maxBytes !== undefined && content.length > decl.maxBytes) {
      out.add(
        'E_FILE_TOO_LARGE',
        at,
        `File ${decl.name} has ${content.length} bytes; maxBytes is ${decl.maxBytes}.`,
      );
    } else files.set(decl.name, content);
  }
  for (const name of Object.keys(parsed.files)) {
    if (!c.files.some((f) => f.name === name)) {
      out.add('E_FILE_UNDECLARED', [...path, 'files', name], `File ${JSON.stringify(name)} is not declared.`);
    }
  }
  return out.list.length === before ? { mode: 'file_upload', files } : undefined;
}

function checkOne(
  c: Connection,
  raw: unknown,
  path: PropertyKey[],
  out: Problems,
): ParsedCredential | undefined {
  const looksLike = modeOfShape(raw);
  if (
    c.mode === 'browser_login' ? looksLike !== undefined : looksLike !== undefined && looksLike !== c.mode
  ) {
    out.add(
      'E_CREDENTIAL_MODE_MISMATCH',
      path,
      `Connection ${c.id} is ${c.mode}, but its credential has the shape of ${looksLike}.`,
    );
    return undefined;
  }
  switch (c.mode) {
    case 'secret_input':
      return secretInput(c, raw, path, out);
    case 'oauth_redirect':
      return oauthRedirect(raw, path, out);
    case 'file_upload':
      return fileUpload(c, raw, path, out);
    case 'browser_login':
      if (raw !== null && (typeof raw !== 'object' || Array.isArray(raw) || Object.keys(raw).length > 0)) {
        out.add(
          'E_CREDENTIAL_MODE_MISMATCH',
          path,
          `Connection ${c.id} is browser_login and takes no credential.`,
        );
      }
      return undefined;
  }
}

/** Checks one credential for one connection, its problems' paths under `path`; never throws for bad input. */
export function checkCredential(
  connection: Connection,
  raw: unknown,
  path: PropertyKey[] = [],
): { credential: ParsedCredential | undefined; problems: Problem[] } {
  const out = new Problems();
  const credential = checkOne(connection, raw, path, out);
  return { credential: out.list.length === 0 ? credential : undefined, problems: out.list };
}

/** Checks every entry of `raw` against `connections`; never throws for bad input. */
export function checkCredentials(connections: readonly Connection[], raw: unknown): CheckedCredentials {
  const out = new Problems();
  const credentials = new Map<string, ParsedCredential>();
  if (raw === undefined || raw === null) return { credentials, problems: out.list };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    out.list.push({
      code: 'E_FIELD_TYPE',
      path: 'credentials',
      message: 'Credentials must be an object keyed by connection id.',
      fix: 'Send `{ "<connection_id>": { … } }`.',
    });
    return { credentials, problems: out.list };
  }
  const byId = new Map(connections.map((c) => [c.id, c]));
  for (const [id, value] of Object.entries(raw)) {
    // `{ id: undefined }` from a JS caller means "none", as in JSON where the key would be absent.
    if (value === undefined) continue;
    const path = ['credentials', id];
    const connection = byId.get(id);
    if (!connection) {
      out.add(
        'E_CREDENTIAL_UNDECLARED',
        path,
        `Credentials name connection ${JSON.stringify(id)}, which the manifest does not declare.`,
      );
      continue;
    }
    const parsed = checkOne(connection, value, path, out);
    if (parsed) credentials.set(id, parsed);
  }
  return { credentials, problems: out.list };
}
