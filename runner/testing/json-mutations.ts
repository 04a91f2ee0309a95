/**
 * fast-check arbitraries for fuzzing what callers send: near-valid mutations of a valid JSON
 * value (one to three changes at paths inside it), so properties reach deep validation rules
 * rather than only the first type check. Test-only.
 */
import fc from 'fast-check';

type Key = string | number;
type Mutation =
  | { kind: 'delete'; at: number }
  | { kind: 'replace'; at: number; value: unknown }
  | { kind: 'addKey'; at: number; key: string; value: unknown }
  | { kind: 'duplicate'; at: number };

/** Every path inside a JSON value, the root ([]) first. */
export function pathsOf(value: unknown, prefix: Key[] = []): Key[][] {
  const out: Key[][] = [prefix];
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(...pathsOf(v, [...prefix, Array.isArray(value) ? Number(k) : k]));
    }
  }
  return out;
}

/** Strings that validation rules care about: empty, huge, control characters, paths, proto names. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '..',
    '../etc/passwd',
    '/abs',
    'a\u0000b',
    '\ud800',
    'x'.repeat(70_000),
    '__proto__',
    'constructor',
    'PATH',
    'GREXAL_TOKEN',
    'LD_PRELOAD',
    'file:',
    'file:missing.json',
    'A',
    '-a',
    'openai',
  ),
);

const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(-1, 0, 0.5, 2 ** 31, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, -0),
);

/** Any JSON value, leaning on the hostile strings and numbers above. */
export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  hostileNumber,
  fc.constantFrom(null, true, false, {}, []),
  fc.jsonValue({ maxDepth: 2 }),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: hostileValue }),
  fc.record({
    kind: fc.constant('addKey' as const),
    at: fc.nat(),
    key: hostileString,
    value: hostileValue,
  }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
);

function parentOf(root: unknown, path: Key[]): Record<Key, unknown> | unknown[] | undefined {
  let node: unknown = root;
  for (const key of path.slice(0, -1)) node = (node as Record<Key, unknown>)[key];
  return node && typeof node === 'object' ? (node as Record<Key, unknown>) : undefined;
}

function apply(root: unknown, original: Mutation): unknown {
  // Generated values are shared between runs (constantFrom's `{}` and `[]` above all): insert
  // copies, or a later run mutates an earlier one's value, up to a cycle.
  const m = 'value' in original ? { ...original, value: structuredClone(original.value) } : original;
  const paths = pathsOf(root);
  const path = paths[m.at % paths.length]!;
  if (path.length === 0) {
    if (m.kind === 'replace') return m.value;
    if (m.kind === 'addKey' && root && typeof root === 'object' && !Array.isArray(root)) {
      // defineProperty: an own "__proto__" key, as JSON.parse would make it, not a prototype change.
      Object.defineProperty(root, m.key, {
        value: m.value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return root;
  }
  const parent = parentOf(root, path)!;
  const key = path[path.length - 1]!;
  const target = (parent as Record<Key, unknown>)[key];
  switch (m.kind) {
    case 'delete':
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete (parent as Record<Key, unknown>)[key];
      break;
    case 'replace':
      (parent as Record<Key, unknown>)[key] = m.value;
      break;
    case 'addKey':
      if (target && typeof target === 'object' && !Array.isArray(target))
        Object.defineProperty(target, m.key, {
          value: m.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      else if (Array.isArray(target)) target.push(m.value);
      break;
    case 'duplicate':
      if (Array.isArray(parent)) parent.push(structuredClone(target));
      break;
  }
  return root;
}

/** `base()` (a fresh valid value each call) with one to three mutations applied. */
export function nearValid(base: () => unknown): fc.Arbitrary<unknown> {
  return fc
    .array(mutation, { minLength: 1, maxLength: 3 })
    .map((mutations) => mutations.reduce((value, m) => apply(value, m), base()));
}
