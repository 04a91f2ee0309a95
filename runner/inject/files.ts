/**
 * The file channel, host side: one tar of `<connection_id>/<name>` entries, plain files only,
 * which the sandbox's supervisor writes under /tmp/grexal (see sandbox-agent/supervisor/filechannel.py).
 */
import { pack } from 'tar-stream';

export interface FileEntry {
  connectionId: string;
  name: string;
  content: Buffer;
}

/** Packs the entries in order; names were validated by the manifest schema. */
export async function buildFilesTar(entries: readonly FileEntry[]): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    tar.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    tar.on('end', resolve);
    tar.on('error', reject);
  });
  for (const entry of entries) {
    await new Promise<void>((resolve, reject) => {
      tar.entry(
        {
          name: `${entry.connectionId}/${entry.name}`,
          type: 'file',
          size: entry.content.length,
          mode: 0o400,
          // Nothing about the host leaks into the archive.
          mtime: new Date(0),
          uid: 0,
          gid: 0,
        },
        entry.content,
        (error) => (error ? reject(error) : resolve()),
      );
    });
  }
  tar.finalize();
  await done;
  return Buffer.concat(chunks);
}
