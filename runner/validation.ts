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
  // A record key's own refinement is nested in an `invalid_key` issue at the key's path.
  const keyIssue = issue.code === 'invalid_key' ? issue.issues[0] : undefined;
  if (keyIssue) return problemOf({ ...keyIssue, path: issue.path } as z.core.$ZodIssue, prefix);
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

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** False when the string holds a lone UTF-16 surrogate (String#isWellFormed, which lib ES2023 lacks). */
export function isWellFormedText(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

/** At most this many unencodable strings are listed; the rest would repeat the same fix. */
const MAX_UNENCODABLE_PROBLEMS = 16;

export const UNENCODABLE_FIX =
  'Send text as valid Unicode: every UTF-16 surrogate in a pair (a JSON `\\ud83d\\ude00` is fine, a lone `\\ud800` is not), and no NUL in a command argument or an env value.';

/**
 * Where `input` holds a string or an object key that has no UTF-8 form (a lone UTF-16 surrogate,
 * which JSON's `\uXXXX` escapes can carry): such text cannot reach argv, env, a file or a log
 * unchanged, so it is refused wherever it is. Iterative: a deeply nested body must not overflow
 * the stack.
 */
export function findUnencodable(input: unknown, limit = MAX_UNENCODABLE_PROBLEMS): PropertyKey[][] {
  // Each entry links to its parent: copying the path at every level would be quadratic in depth.
  type Node = { value: unknown; key?: PropertyKey; parent?: Node };
  const pathOf = (node: Node | undefined): PropertyKey[] => {
    const path: PropertyKey[] = [];
    for (let n = node; n?.key !== undefined; n = n.parent) path.push(n.key);
    return path.reverse();
  };
  const found: PropertyKey[][] = [];
  const stack: Node[] = [{ value: input }];
  while (stack.length > 0 && found.length < limit) {
    const node = stack.pop() as Node;
    const { value, key } = node;
    if (typeof key === 'string' && !isWellFormedText(key)) found.push(pathOf(node));
    else if (typeof value === 'string') {
      if (!isWellFormedText(value)) found.push(pathOf(node));
    } else if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push({ value: value[i], key: i, parent: node });
    } else if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value)) {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [name, child] = entries[i] as [string, unknown];
        stack.push({ value: child, key: name, parent: node });
      }
    }
  }
  return found;
}

function unencodableProblems(input: unknown, prefix: string): Problem[] {
  return findUnencodable(input).map((path) => ({
    code: 'E_STRING_UNENCODABLE',
    path: formatPath(path, prefix),
    message: 'The text holds a lone UTF-16 surrogate, which has no UTF-8 form.',
    fix: UNENCODABLE_FIX,
  }));
}

/**
 * Parses or throws one ValidationError listing every problem at once. Every schema of the runner
 * goes through here, so text without a UTF-8 form is refused here once, for every field.
 */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  input: unknown,
  what: string,
  prefix = '',
): z.output<S> {
  const unencodable = unencodableProblems(input, prefix);
  // reportInput: zod v4 leaves the input out of issues otherwise, and a wrong type would read as missing.
  const result = schema.safeParse(input, { reportInput: true });
  if (result.success && unencodable.length === 0) return result.data;
  const seen = new Set(unencodable.map((p) => p.path));
  const problems = result.success ? [] : result.error.issues.map((issue) => problemOf(issue, prefix));
  throw new ValidationError([...unencodable, ...problems.filter((p) => !seen.has(p.path))], what);
}
