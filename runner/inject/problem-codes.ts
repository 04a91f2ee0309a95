/**
 * Stable codes for the problems found in a manifest's connections or a credentials payload. Each
 * appears as `Problem.code` inside an `E_VALIDATION` error, with the path and the fix below.
 * A retired code is never reused.
 */
export const PROBLEM_CODES = {
  E_CONNECTION_ID_INVALID: {
    summary: 'A connection id is not 1–64 of a-z, 0-9, `_`, `-` starting with a letter or digit.',
    fix: 'Use an id such as `openai` or `google_drive`: lower case, digits, `_` or `-`, at most 64 characters.',
  },
  E_CONNECTION_ID_DUPLICATE: {
    summary: 'Two connections share an id.',
    fix: 'Give each connection its own id.',
  },
  E_CONNECTION_MODE_INVALID: {
    summary: 'A connection has no mode, or one the runner does not know.',
    fix: 'Set `mode` to secret_input, oauth_redirect, file_upload or browser_login.',
  },
  E_FIELD_KEY_INVALID: {
    summary: 'A secret_input field key is not 1–64 of A-Z, a-z, 0-9, `_`, `-` starting with a letter or `_`.',
    fix: 'Use a key such as `api_key`.',
  },
  E_FIELD_KEY_DUPLICATE: {
    summary: 'Two fields of one connection share a key.',
    fix: 'Give each field its own key.',
  },
  E_FILE_NAME_INVALID: {
    summary: 'A file name is not a plain name (no `/`, no `..`, no leading dot, no control characters).',
    fix: 'Use a plain name such as `service-account.json`: letters, digits, `.`, `_`, `-`, not starting with a dot.',
  },
  E_FILE_NAME_DUPLICATE: {
    summary: 'Two files of one connection share a name.',
    fix: 'Give each file its own name.',
  },
  E_ENV_NAME_INVALID: {
    summary: 'An env variable name does not match `[A-Z_][A-Z0-9_]*` (at most 128 characters).',
    fix: 'Use an upper-case name such as `OPENAI_API_KEY`.',
  },
  E_ENV_NAME_RESERVED: {
    summary:
      'An env variable name belongs to the runner, the shell or a loader (PATH, HOME, LD_*, GREXAL_*, …).',
    fix: 'Choose another name; see docs/ctx-protocol.md for the reserved list.',
  },
  E_ENV_NAME_DUPLICATE: {
    summary: 'Two connections set the same env variable.',
    fix: 'Map each env variable from one connection only.',
  },
  E_ENV_TARGET_UNKNOWN: {
    summary: 'An env mapping names a field or `file:<name>` the connection does not declare.',
    fix: 'Map to a declared field key, or to `file:<name>` of a declared file.',
  },
  E_CREDENTIAL_UNDECLARED: {
    summary: 'The credentials name a connection the manifest does not declare.',
    fix: 'Remove the entry, or declare the connection in the manifest.',
  },
  E_CREDENTIAL_MODE_MISMATCH: {
    summary: "A credential has the shape of another mode than its connection's.",
    fix: 'Send the shape of the connection mode (see DESIGN §4 credentials).',
  },
  E_CREDENTIAL_FIELD_MISSING: {
    summary: 'A secret_input credential lacks a declared field.',
    fix: 'Send every field the manifest declares.',
  },
  E_CREDENTIAL_FIELD_UNKNOWN: {
    summary: 'A secret_input credential carries a field the manifest does not declare.',
    fix: 'Send only the declared fields.',
  },
  E_CREDENTIAL_VALUE_INVALID: {
    summary: 'A credential value is empty, too long or contains a NUL character.',
    fix: 'Send the value as a non-empty string of at most 65536 characters without NUL.',
  },
  E_SECRET_TOO_SHORT: {
    summary:
      'A secret value is shorter than 8 characters, too short to mask in output without blanking common words.',
    fix: 'Use the real credential (at least 8 characters), or mark a non-secret field `"secret": false`.',
  },
  E_CREDENTIAL_MISSING: {
    summary: 'A required connection has no credential.',
    fix: 'Provide a credential for it, or mark the connection `"required": false`.',
  },
  E_FILE_MISSING: {
    summary: 'A file_upload credential lacks a declared file.',
    fix: 'Send every file the manifest declares, as `{ "base64": "…" }`.',
  },
  E_FILE_UNDECLARED: {
    summary: 'A file_upload credential carries a file the manifest does not declare.',
    fix: 'Send only the declared files.',
  },
  E_FILE_BASE64_INVALID: {
    summary: "A file's content is not valid base64.",
    fix: 'Send standard base64 (A-Z a-z 0-9 + /, `=` padding); line breaks are ignored.',
  },
  E_FILE_EMPTY: {
    summary: 'A file is empty.',
    fix: 'Send the file’s content.',
  },
  E_FILE_TOO_LARGE: {
    summary: "A file is larger than its connection's `maxBytes`.",
    fix: 'Send a smaller file, or raise `maxBytes` in the manifest.',
  },
  E_FILES_TOTAL_TOO_LARGE: {
    summary: 'All files of a sandbox together exceed the total cap (8 MiB by default).',
    fix: 'Send smaller files; the cap covers file_upload files and secret_input `file`s together.',
  },
  E_CONNECTIONS_TOO_MANY: {
    summary: 'A manifest declares more connections than a sandbox accepts (64).',
    fix: 'Declare at most 64 connections.',
  },
  E_CONNECTION_NOT_UPDATABLE: {
    summary:
      "A running sandbox's credential change names a browser_login connection, whose session lives in the sandbox's browser.",
    fix: 'Ask the agent to request a takeover (ctx.request_takeover) so the user logs in again.',
  },
} as const;

export type ProblemCode = keyof typeof PROBLEM_CODES;

/** The `params` a zod custom issue carries so runner/validation.ts maps it to a Problem. */
export function problemParams(code: ProblemCode): { code: ProblemCode; fix: string } {
  return { code, fix: PROBLEM_CODES[code].fix };
}
