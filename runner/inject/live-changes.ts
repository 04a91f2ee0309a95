/**
 * The checks of a credential change on a running sandbox (PUT/DELETE of one connection): the same
 * rules as a create's credentials for that connection's mode, with paths relative to the request
 * body. A refused change touches nothing.
 */
import { type Problem, ValidationError } from '../errors.ts';
import { checkCredential, type ParsedCredential } from './check-credentials.ts';
import type { FileEntry } from './files.ts';
import { PROBLEM_CODES, type ProblemCode } from './problem-codes.ts';
import type { Connection } from './schemas.ts';
import { secretInputFileContent } from './secret-input-file.ts';

/** How the sandbox's files change for a connection; implemented by the sandbox lifecycle. */
export interface LiveFiles {
  /** Replaces the connection's files atomically (a tar of `<connection_id>/<name>` entries). */
  replace(connectionId: string, filesTar: Buffer): Promise<void>;
  /** Removes the connection's directory and files; succeeds when they are already gone. */
  remove(connectionId: string): Promise<void>;
}

const problem = (code: ProblemCode, path: string, message: string): Problem => ({
  code,
  path,
  message,
  fix: PROBLEM_CODES[code].fix,
});

/** The declared connection a change names; throws ValidationError for any other id or browser_login. */
export function connectionForChange(byId: ReadonlyMap<string, Connection>, connectionId: string): Connection {
  const connection = byId.get(connectionId);
  if (!connection) {
    const known = [...byId.keys()].join(', ') || 'none';
    throw new ValidationError(
      [
        problem(
          'E_CREDENTIAL_UNDECLARED',
          'connectionId',
          `Connection ${JSON.stringify(connectionId.slice(0, 128))} is not declared in this sandbox's manifest (declared: ${known}).`,
        ),
      ],
      'credential change',
    );
  }
  if (connection.mode === 'browser_login') {
    throw new ValidationError(
      [
        problem(
          'E_CONNECTION_NOT_UPDATABLE',
          'connectionId',
          `Connection ${connection.id} is browser_login: it takes no credential, its session lives in the sandbox's browser.`,
        ),
      ],
      'credential change',
    );
  }
  return connection;
}

/** The files a credential puts in the file channel, in the manifest's order. */
export function fileEntriesFor(
  connection: Connection,
  credential: ParsedCredential | undefined,
): FileEntry[] {
  if (credential?.mode === 'file_upload')
    return [...credential.files].map(([name, content]) => ({ connectionId: connection.id, name, content }));
  if (credential?.mode === 'secret_input' && connection.mode === 'secret_input' && connection.file) {
    const content = secretInputFileContent(credential.fields);
    return [{ connectionId: connection.id, name: connection.file, content }];
  }
  return [];
}

const bytesOf = (entries: readonly FileEntry[]): number =>
  entries.reduce((total, entry) => total + entry.content.length, 0);

/**
 * Checks `raw` as the new credential of `connection`. `filesElsewhere` is what the other
 * connections' files take; the total cap covers them and the new files together.
 */
export function checkChange(
  connection: Connection,
  raw: unknown,
  filesElsewhere: number,
  maxTotalFileBytes: number,
): ParsedCredential {
  const { credential, problems } = checkCredential(connection, raw);
  if (credential) {
    const total = filesElsewhere + bytesOf(fileEntriesFor(connection, credential));
    if (total > maxTotalFileBytes) {
      problems.push(
        problem(
          'E_FILES_TOTAL_TOO_LARGE',
          '',
          `Files of this sandbox would total ${total} bytes; the cap is ${maxTotalFileBytes}.`,
        ),
      );
    }
  }
  if (!credential || problems.length > 0) {
    if (problems.length === 0)
      problems.push(
        problem('E_CREDENTIAL_MODE_MISMATCH', '', `Connection ${connection.id} takes no credential.`),
      );
    throw new ValidationError(problems, 'credential change');
  }
  return credential;
}

/** Bytes the file channel holds for every connection but `except`. */
export function filesBytesExcept(
  connections: readonly Connection[],
  credentials: ReadonlyMap<string, ParsedCredential>,
  except: string,
): number {
  return connections
    .filter((c) => c.id !== except)
    .reduce((total, c) => total + bytesOf(fileEntriesFor(c, credentials.get(c.id))), 0);
}

export function hasFileChannel(connection: Connection): boolean {
  return connection.mode === 'file_upload' || (connection.mode === 'secret_input' && !!connection.file);
}
