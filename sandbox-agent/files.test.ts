import { lstat, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Header, pack } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPython } from './testing/python.ts';

type Headers = Partial<Header> & { name: string };

const SUPERVISOR_DIR = new URL('./supervisor', import.meta.url).pathname;

/** Raised when the Python side refuses the tar: the entry it names and its message. */
class FileChannelError extends Error {
  constructor(
    readonly entry: string,
    message: string,
  ) {
    super(message);
  }
}

const HARNESS = `
import json, sys
sys.path.insert(0, sys.argv[1])
from filechannel import FileChannelError, write_files_from_tar
try:
    write_files_from_tar(sys.stdin.buffer.read(), sys.argv[2])
except FileChannelError as error:
    print(json.dumps({'entry': error.entry, 'message': str(error)}))
    sys.exit(3)
`;

/** Runs write_files_from_tar in python3 (-B: no bytecode in the tree); rejects with its refusal. */
async function writeFilesFromTar(tar: Buffer, root: string): Promise<void> {
  const { code, stdout, stderr } = await startPython(['-I', '-S', '-c', HARNESS, SUPERVISOR_DIR, root], {
    stdin: tar,
  }).exit;
  if (code === 3) {
    const refusal = JSON.parse(stdout) as { entry: string; message: string };
    throw new FileChannelError(refusal.entry, refusal.message);
  }
  if (code !== 0) throw new Error(`python3 exited with ${code}: ${stderr}`);
}

let root: string;
let outside: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'grexal-files-'));
  outside = await mkdtemp(join(tmpdir(), 'grexal-outside-'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
  await rm(outside, { recursive: true, force: true });
});

/** A tar of raw entries, exactly as given (the sandbox must not trust the runner's names). */
async function tarOf(entries: { header: Headers; content?: string }[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const ended = new Promise<void>((resolve) => p.on('end', () => resolve()));
  for (const { header, content } of entries) {
    await new Promise<void>((resolve, reject) =>
      p.entry(header, content ?? '', (error) => (error ? reject(error) : resolve())),
    );
  }
  p.finalize();
  await ended;
  return Buffer.concat(chunks);
}

const file = (name: string, content = 'secret-content'): { header: Headers; content: string } => ({
  header: { name, type: 'file', mode: 0o644, size: Buffer.byteLength(content) },
  content,
});

async function refusal(promise: Promise<unknown>): Promise<FileChannelError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(FileChannelError);
    return error as FileChannelError;
  }
  throw new Error('expected a refusal');
}

// Each test starts python3: generous limits, never asserted on.
describe('write_files_from_tar', { timeout: 30_000 }, () => {
  it('writes each file whole, 0400, under a 0700 directory per connection', async () => {
    const big = 'x'.repeat(300_000);
    await writeFilesFromTar(
      await tarOf([
        file('gcp/service-account.json', '{"k":1}'),
        file('gcp/big.bin', big),
        file('aws/credentials.json'),
      ]),
      root,
    );
    expect((await readdir(root)).sort()).toEqual(['aws', 'gcp']);
    expect(await readFile(join(root, 'gcp/service-account.json'), 'utf8')).toBe('{"k":1}');
    expect(await readFile(join(root, 'gcp/big.bin'), 'utf8')).toBe(big);
    expect((await lstat(join(root, 'gcp/big.bin'))).mode & 0o777).toBe(0o400);
    expect((await lstat(join(root, 'aws/credentials.json'))).mode & 0o777).toBe(0o400);
    expect((await lstat(join(root, 'gcp'))).mode & 0o777).toBe(0o700);
    expect((await lstat(join(root, 'gcp'))).uid).toBe(process.getuid?.());
  });

  it('accepts an empty tar', async () => {
    await writeFilesFromTar(await tarOf([]), root);
    expect(await readdir(root)).toEqual([]);
  });

  const badNames = [
    '../x',
    'gcp/../x',
    'gcp/..',
    'gcp/.hidden',
    'gcp/a/b',
    'GCP/key',
    '/abs/key',
    'key',
    'gcp/',
    'g\0cp/key',
    '../../etc/passwd',
  ];
  for (const name of badNames) {
    it(`refuses the entry name ${JSON.stringify(name)}`, async () => {
      const error = await refusal(writeFilesFromTar(await tarOf([file(name)]), root));
      expect(error.message).toContain('Refusing file-channel entry');
      expect(await readdir(root)).toEqual([]);
    });
  }

  it('refuses PAX headers, through which a NUL could be smuggled into a name', async () => {
    const entry = {
      header: { name: 'gcp/key', type: 'file' as const, size: 1, pax: { path: 'gcp/k\0ey' } },
      content: 'x',
    };
    const error = await refusal(writeFilesFromTar(await tarOf([entry]), root));
    expect(error.message).toContain('not a plain file');
    expect(await readdir(root)).toEqual([]);
  });

  for (const type of ['symlink', 'link', 'directory', 'fifo', 'character-device'] as const) {
    it(`refuses a ${type} entry`, async () => {
      const entry = {
        header: {
          name: 'gcp/key.json',
          type,
          linkname: type.includes('link') ? '/etc/passwd' : undefined,
          size: 0,
        },
      };
      const error = await refusal(writeFilesFromTar(await tarOf([entry]), root));
      expect(error.entry).toBe('gcp/key.json');
      expect(error.message).toContain('not a plain file');
      expect(await readdir(root)).toEqual([]);
    });
  }

  it('refuses a symlink planted at a connection directory, never writing through it', async () => {
    await symlink(outside, join(root, 'gcp'));
    const error = await refusal(writeFilesFromTar(await tarOf([file('gcp/key.json')]), root));
    expect(error.message).toContain('already exists');
    expect(await readdir(outside)).toEqual([]);
    expect((await lstat(join(root, 'gcp'))).isSymbolicLink()).toBe(true);
  });

  it('refuses a symlink planted at a file target, never following it', async () => {
    await mkdir(join(root, 'gcp'), { mode: 0o700 });
    const victim = join(outside, 'victim.txt');
    await writeFile(victim, 'original');
    await symlink(victim, join(root, 'gcp/key.json'));
    await refusal(writeFilesFromTar(await tarOf([file('gcp/key.json', 'attacker')]), root));
    expect(await readFile(victim, 'utf8')).toBe('original');
  });

  it('refuses the same target twice and removes what it wrote', async () => {
    const error = await refusal(
      writeFilesFromTar(
        await tarOf([file('gcp/a.json'), file('aws/b.json'), file('gcp/a.json', 'again')]),
        root,
      ),
    );
    expect(error.entry).toBe('gcp/a.json');
    expect(error.message).toContain('already exists');
    expect(await readdir(root)).toEqual([]);
  });

  it('refuses a root that is not a directory', async () => {
    await symlink(outside, join(root, 'link'));
    await refusal(writeFilesFromTar(await tarOf([file('gcp/a.json')]), join(root, 'link')));
    await refusal(writeFilesFromTar(await tarOf([file('gcp/a.json')]), join(root, 'missing')));
    expect(await readdir(outside)).toEqual([]);
  });

  it('refuses garbage that is not a tar', async () => {
    const error = await refusal(writeFilesFromTar(Buffer.alloc(1024, 7), root));
    expect(error.message).toContain('unreadable');
  });
});
