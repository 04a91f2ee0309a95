/**
 * The `.grexal/connections.json` an agent author fills in: one entry per declared connection, in
 * the shape its mode takes, with placeholders that say what goes where.
 */
import type { Connection } from '../inject/index.ts';

const FILL = (what: string) => `<fill in: ${what}>`;

function entryFor(connection: Connection): unknown {
  switch (connection.mode) {
    case 'secret_input':
      return { fields: Object.fromEntries(connection.fields.map((f) => [f.key, FILL(f.key)])) };
    case 'oauth_redirect':
      return {
        access_token: FILL('an access token'),
        refresh_token: FILL('a refresh token, or remove this line'),
      };
    case 'file_upload':
      return {
        files: Object.fromEntries(
          connection.files.map((f) => [f.name, { base64: FILL(`base64 of ${f.name}`) }]),
        ),
      };
    case 'browser_login':
      return undefined;
  }
}

/** The template, and the ids the author has to fill (browser logins need nothing in advance). */
export function connectionsTemplate(connections: readonly Connection[]): {
  template: Record<string, unknown>;
  toFill: string[];
} {
  const template: Record<string, unknown> = {};
  for (const connection of connections) {
    const entry = entryFor(connection);
    if (entry !== undefined) template[connection.id] = entry;
  }
  return { template, toFill: Object.keys(template) };
}
