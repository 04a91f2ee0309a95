/**
 * The file channel, sandbox side: writes the runner's tar under /tmp/grexal before the agent
 * starts. Every entry must be a plain file named exactly `<connection_id>/<name>`; each file is
 * created with O_EXCL|O_NOFOLLOW and mode 0400, so a link or file planted at a target is refused,
 * never followed or overwritten. Runs on Node 18 and loads no validator.
 */
import { constants, type Stats } from 'node:fs';
import { lchown, lstat, mkdir, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { extract, type Header } from 'tar-stream';
import { CONNECTION_ID_PATTERN, FILE_NAME_PATTERN, FILES_ROOT } from './wire.ts';

export class FileChannelError extends Error {
  override readonly name = 'FileChannelError';
  constructor(
    readonly entry: string,
    why: string,
  ) {
    super(`Refusing file-channel entry ${JSON.stringify(entry)}: ${why}.`);
  }
}

export interface WriteFilesOptions {
  /** chown each directory and file to this owner (when the supervisor runs as root). */
  owner?: { uid: number; gid: number };
}

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** `[connectionId, name]` of a valid entry; throws naming the entry otherwise. */
function parseEntry(header: Header): [string, string] {
  const entry = header.name;
  if (header.type !== 'file')
    throw new FileChannelError(entry, `it is a ${header.type ?? 'unknown'} entry, not a plain file`);
  const parts = entry.split('/');
  if (parts.length !== 2)
    throw new FileChannelError(entry, 'the name must be exactly <connection_id>/<name>');
  const [id, name] = parts as [string, string];
  if (!CONNECTION_ID_PATTERN.test(id))
    throw new FileChannelError(entry, `${JSON.stringify(id)} is not a connection id`);
  if (!FILE_NAME_PATTERN.test(name)) {
    throw new FileChannelError(
      entry,
      `${JSON.stringify(name)} is not a plain file name (no "..", "/", leading dot or NUL)`,
    );
  }
  return [id, name];
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

class Writer {
  private readonly dirs = new Set<string>();
  private readonly files: string[] = [];

  constructor(
    private readonly root: string,
    private readonly options: WriteFilesOptions,
  ) {}

  /** Creates `<root>/<id>` (0700) the first time; a directory that was already there is refused. */
  private async dirFor(entry: string, id: string): Promise<string> {
    const dir = join(this.root, id);
    if (this.dirs.has(dir)) return dir;
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new FileChannelError(entry, `${dir} already exists`);
      throw new FileChannelError(entry, `cannot create ${dir} (${code ?? String(error)})`);
    }
    this.dirs.add(dir);
    // lchown: the directory was just created by mkdir, and a link is never followed anyway.
    if (this.options.owner) await lchown(dir, this.options.owner.uid, this.options.owner.gid);
    return dir;
  }

  async write(entry: string, id: string, name: string, content: Buffer): Promise<void> {
    const path = join(await this.dirFor(entry, id), name);
    let handle: Awaited<ReturnType<typeof open>>;
    try {
      handle = await open(path, CREATE_FLAGS, 0o400);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      const why =
        code === 'EEXIST' || code === 'ELOOP'
          ? 'something already exists at the target'
          : `cannot create it (${code ?? String(error)})`;
      throw new FileChannelError(entry, why);
    }
    this.files.push(path);
    try {
      if (this.options.owner) await handle.chown(this.options.owner.uid, this.options.owner.gid);
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
  }

  /** Removes what this call created, so a refused tar leaves nothing half-written. */
  async undo(): Promise<void> {
    for (const file of this.files) await rm(file, { force: true });
    for (const dir of this.dirs) await rm(dir, { recursive: true, force: true });
  }
}

/** Writes every entry of `tar` under `root`; resolves once every file is written whole. */
export async function writeFilesFromTar(
  tar: Buffer,
  root = FILES_ROOT,
  options: WriteFilesOptions = {},
): Promise<void> {
  const rootStats = await lstatOrUndefined(root);
  if (!rootStats?.isDirectory()) throw new FileChannelError(root, `the root ${root} is not a directory`);
  const writer = new Writer(root, options);
  const extractor = extract();
  extractor.end(tar);
  try {
    for await (const entry of extractor) {
      const [id, name] = parseEntry(entry.header);
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      await writer.write(entry.header.name, id, name, Buffer.concat(chunks));
    }
  } catch (error) {
    await writer.undo();
    if (error instanceof FileChannelError) throw error;
    throw new FileChannelError(
      '(archive)',
      `the tar is unreadable (${error instanceof Error ? error.message : String(error)})`,
    );
  }
}
