// esbuild writes code as ASCII (its default charset escapes strings, templates, regular
// expressions) but copies the comments it keeps as they are: a single `→` or `—` in one of them
// makes V8 hold the whole 1.5 MB bundle as a two-byte string, twice the memory to read and to
// keep (and, in `grexal run`'s startup snapshot, to deserialize): ~5 ms of every `grexal run`.
// Each such character becomes `?` (one UTF-16 unit for one: the source map's columns stay
// right), and the build proves it touched comments only: both texts without their comments
// must be the same code.
import { readFileSync, writeFileSync } from 'node:fs';
import { transformSync } from 'esbuild';

const NON_ASCII = /[\u0080-\uffff]/g;

export function asciiComments(file) {
  const text = readFileSync(file, 'utf8');
  const ascii = text.replace(NON_ASCII, '?');
  if (ascii === text) return;
  const code = (source) =>
    transformSync(source, { minifyWhitespace: true, legalComments: 'none', format: 'cjs' }).code;
  if (code(ascii) !== code(text)) {
    throw new Error(`${file}: a non-ASCII character outside a comment (esbuild's output should escape it)`);
  }
  writeFileSync(file, ascii);
}
