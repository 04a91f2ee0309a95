import type { Secret } from './secret.ts';

/** A secret_input connection's optional `file`: its fields as pretty JSON, one trailing newline. */
export function secretInputFileContent(fields: ReadonlyMap<string, Secret>): Buffer {
  const object: Record<string, string> = {};
  for (const [key, value] of fields) object[key] = value.reveal();
  return Buffer.from(`${JSON.stringify(object, null, 2)}\n`);
}
