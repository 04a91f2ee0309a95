/**
 * The forms in which a credential value can show up in output: raw, each line of a multi-line
 * value, base64 and base64url at each of the three byte alignments, URL-encoded (component and
 * form encoding) and JSON-escaped.
 */

/** Longest piece of a value learned as one pattern; longer values are learned in overlapping pieces. */
export const MAX_UNIT_CHARS = 4096;

/**
 * A value's base64 as it appears inside a larger base64 blob where the value starts `k` bytes
 * into a 3-byte group: encode behind `k` zero bytes, then keep only the characters whose 6 bits
 * all come from the value (the first and last characters depend on the neighbours).
 */
export function base64Alignments(bytes: Buffer): string[] {
  const out: string[] = [];
  for (let k = 0; k < 3; k++) {
    const encoded = Buffer.concat([Buffer.alloc(k), bytes]).toString('base64');
    const start = Math.ceil((8 * k) / 6);
    const end = Math.floor((8 * (k + bytes.length)) / 6);
    if (end > start) out.push(encoded.slice(start, end));
  }
  return out;
}

function toBase64Url(base64: string): string {
  return base64.replace(/\+/g, '-').replace(/\//g, '_');
}

/** application/x-www-form-urlencoded, as URLSearchParams writes it (space → `+`). */
function formEncode(value: string): string {
  return encodeURIComponent(value)
    .replace(/%20/g, '+')
    .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** Splits a long string into pieces of at most `size`, the last one overlapping so it is full length. */
function pieces(value: string, size: number): string[] {
  if (value.length <= size) return [value];
  const out: string[] = [];
  for (let at = 0; at + size <= value.length; at += size) out.push(value.slice(at, at + size));
  if (value.length % size !== 0) out.push(value.slice(value.length - size));
  return out;
}

/** The plain-text units of a value: itself and each trimmed line, each at most MAX_UNIT_CHARS. */
function unitsOf(value: string, minLength: number): string[] {
  const units = new Set<string>([value]);
  if (/[\r\n]/.test(value)) {
    for (const line of value.split(/\r?\n|\r/)) units.add(line.trim());
  }
  return [...units].filter((u) => u.length >= minLength).flatMap((u) => pieces(u, MAX_UNIT_CHARS));
}

export function formsOf(value: string, minLength: number): string[] {
  const forms = new Set<string>();
  for (const unit of unitsOf(value, minLength)) {
    forms.add(unit);
    forms.add(JSON.stringify(unit).slice(1, -1));
    forms.add(encodeURIComponent(unit));
    forms.add(formEncode(unit));
    for (const b64 of base64Alignments(Buffer.from(unit, 'utf8'))) {
      forms.add(b64);
      forms.add(toBase64Url(b64));
    }
  }
  return [...forms].filter((f) => f.length >= minLength);
}

/** For binary content: its base64 forms only, in pieces of MAX_UNIT_CHARS bytes. */
export function binaryFormsOf(content: Buffer, minLength: number): string[] {
  const forms = new Set<string>();
  for (let at = 0; at < content.length; at += MAX_UNIT_CHARS) {
    for (const b64 of base64Alignments(content.subarray(at, at + MAX_UNIT_CHARS))) {
      forms.add(b64);
      forms.add(toBase64Url(b64));
    }
  }
  return [...forms].filter((f) => f.length >= minLength);
}
