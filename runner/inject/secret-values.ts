/**
 * The secret-looking values inside an uploaded text file, learned by the masker on their own: an
 * agent that parses a key file prints a value without its key or quotes (`API_KEY=sk-…` → `sk-…`),
 * which the file's whole content and its lines, also learned, would not match. For files too large
 * to learn whole, these values are all that is learned.
 */

/** Member and variable names that say they hold a secret; other values (emails, ids) stay readable. */
const SECRET_KEY = /key|secret|token|password|passwd|private|credential/i;
/** …but not endpoints such as a service account's `token_uri`. */
const ENDPOINT_KEY = /_(uri|url)$/i;
/** At most this many values per file, so a hostile upload cannot grow the masker without bound. */
export const MAX_SECRET_VALUES_PER_FILE = 1000;

function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) && !ENDPOINT_KEY.test(key);
}

/** String values under secret-looking keys, and any multi-line string value, of a JSON document. */
export function secretJsonValues(text: string): string[] {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    return [];
  }
  const found: string[] = [];
  const walk = (value: unknown, key: string): void => {
    if (typeof value === 'string') {
      if (isSecretKey(key) || value.includes('\n')) found.push(value);
    } else if (Array.isArray(value)) {
      for (const item of value) walk(item, key);
    } else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(v, k);
  };
  walk(document, '');
  return found;
}

/**
 * `key: value` and `key = value` lines (YAML, INI, TOML, .env, Java properties) whose key looks
 * secret, with quotes and `export` stripped. A YAML block scalar (`key: |`) gives its indented lines.
 */
export function secretAssignmentValues(text: string): string[] {
  const lines = text.split(/\r?\n/);
  const found: string[] = [];
  for (const [i, line] of lines.entries()) {
    const m = /^(\s*)(?:export\s+|-\s+)?["']?([\w.-]+)["']?\s*[:=]\s*(.*?)\s*,?\s*$/.exec(line);
    if (!m?.[2] || !isSecretKey(m[2])) continue;
    const value = unquote(m[3] ?? '');
    if (/^[|>][+-]?$/.test(value)) found.push(blockScalar(lines, i + 1, (m[1] ?? '').length));
    else if (value) found.push(value);
  }
  return found;
}

function unquote(value: string): string {
  const quoted = /^(["'])(.*)\1$/.exec(value);
  return quoted ? (quoted[2] ?? '') : value;
}

/** The lines after `from` indented deeper than `indent`, joined, as YAML reads a `|` scalar. */
function blockScalar(lines: string[], from: number, indent: number): string {
  const body: string[] = [];
  for (let i = from; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() !== '' && line.length - line.trimStart().length <= indent) break;
    body.push(line.trim());
  }
  return body.join('\n').trim();
}

/** PEM blocks of private keys, whole: the masker learns each of their lines too. */
export function privateKeyBlocks(text: string): string[] {
  return [...text.matchAll(/-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----[\s\S]*?-----END \1-----/g)].map(
    (m) => m[0],
  );
}

/** Every secret-looking value of a text file, JSON or not, at most MAX_SECRET_VALUES_PER_FILE. */
export function secretValuesIn(text: string): string[] {
  const values = new Set([
    ...secretJsonValues(text),
    ...secretAssignmentValues(text),
    ...privateKeyBlocks(text),
  ]);
  return [...values].slice(0, MAX_SECRET_VALUES_PER_FILE);
}
