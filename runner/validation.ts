import type { z } from 'zod';
import { type Problem, ValidationError } from './errors.ts';

/** `['connections', 2, 'env', 'OPENAI_API_KEY']` → `connections[2].env.OPENAI_API_KEY`. */
export function formatPath(path: readonly PropertyKey[], prefix = ''): string {
  let out = prefix;
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/**
 * Refinements name their own code and fix through `params: { code, fix }`; zod's built-in checks
 * map to the generic codes below.
 */
function problemOf(issue: z.core.$ZodIssue, prefix: string): Problem {
  const path = formatPath(issue.path, prefix);
  const params = (issue as { params?: { code?: string; fix?: string } }).params;
  if (params?.code) return { code: params.code, path, message: issue.message, fix: params.fix };
  switch (issue.code) {
    case 'unrecognized_keys':
      return {
        code: 'E_FIELD_UNKNOWN',
        path,
        message: `Unknown field(s): ${issue.keys.join(', ')}.`,
        fix: 'Remove the field(s); unknown fields are refused, not ignored.',
      };
    case 'invalid_type':
      return issue.input === undefined
        ? { code: 'E_FIELD_REQUIRED', path, message: `Required (${issue.expected}).`, fix: 'Add the field.' }
        : {
            code: 'E_FIELD_TYPE',
            path,
            message: issue.message,
            fix: `Send a value of type ${issue.expected}.`,
          };
    default:
      return { code: 'E_FIELD_INVALID', path, message: issue.message };
  }
}

/** Parses or throws one ValidationError listing every problem at once. */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
  prefix = '',
): z.output<S> {
  // reportInput: zod v4 leaves the input out of issues otherwise, and a wrong type would read as missing.
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success) return result.data;
  throw new ValidationError(
    result.error.issues.map((issue) => problemOf(issue, prefix)),
    what,
  );
}
