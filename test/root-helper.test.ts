/**
 * The root helper against the real kernel (runner/host/root-helper.ts): the per-sandbox tmpfs
 * mounted and unmounted, a link deleted, a slot's lock made, with no mount(8), umount(8) or ip(8)
 * on PATH, so that what happened, the helper did (the nft part: test/nft-run.test.ts); and a
 * redirected connection's original destination looked up over ctnetlink.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { rootHelper } from '../runner/host/root-helper.ts';
import { exec } from '../runner/network/exec.ts';
import { LinkHelper } from '../runner/network/link-helper.ts';
import { createLink, linkAlias } from '../runner/network/veth.ts';
import {
  mountRunDirTmpfs,
  RUN_DIR_TMPFS_BYTES,
  RUN_DIR_TMPFS_SOURCE,
  unmountRunDir,
} from '../runner/sandbox/run-dir-mount.ts';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step().catch(() => {});
});

/** Runs `body` with nothing on PATH: a spawned tool would fail. */
async function withoutTools<T>(body: () => Promise<T>): Promise<T> {
  const path = process.env['PATH'];
  process.env['PATH'] = '/nonexistent';
  try {
    return await body();
  } finally {
    process.env['PATH'] = path;
  }
}

/** mountinfo writes a space in a path as \040. */
const mountLine = async (dir: string) =>
  (await readFile('/proc/self/mountinfo', 'utf8'))
    .split('\n')
    .find((line) => line.split(' ')[4] === dir.replaceAll(' ', '\\040'));

describe('the root helper', () => {
  it('mounts the capped tmpfs (nosuid, nodev, noexec) and unmounts it, a path with a space included', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'root helper '));
    cleanup.push(
      () => rm(dir, { recursive: true, force: true }),
      () => exec('umount', ['-l', dir]),
    );
    // A runner mounts through the helper once it runs (a cold one mounts by mount(8) at first).
    rootHelper.warm();
    expect(await withoutTools(() => mountRunDirTmpfs(dir))).toBe(true);
    const line = await mountLine(dir);
    expect(line).toContain(` - tmpfs ${RUN_DIR_TMPFS_SOURCE} `);
    expect(line?.split(' ')[5]).toMatch(/nosuid,nodev,noexec/);
    expect(line).toContain(`size=${RUN_DIR_TMPFS_BYTES / 1024}k`);
    await withoutTools(() => unmountRunDir(dir));
    expect(await mountLine(dir)).toBeUndefined();
    // Not a mount any more: not an error.
    await withoutTools(() => unmountRunDir(dir));
  });

  it('deletes a link by name, and a link that is not there is no error', async () => {
    const name = `grt${process.pid % 100_000}`;
    await exec('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
    cleanup.push(() => exec('ip', ['link', 'del', name]));
    const links = new LinkHelper();
    expect(await withoutTools(() => links.deleteLink(name))).toBe(true);
    expect(await exec('ip', ['-o', 'link']).then((out) => out.includes(`${name}@`))).toBe(false);
    expect(await withoutTools(() => links.deleteLink(name))).toBe(true);
  });

  it("makes a slot's lock: down far end, the host's address, the alias, no IPv6 address; removes it", async () => {
    const mover = new LinkHelper();
    const alias = linkAlias('sbx_roothelpertest', 'inst_roothelpertest');
    const link = await withoutTools(() =>
      createLink({
        sandboxId: 'sbx_roothelpertest',
        instanceId: 'inst_roothelpertest',
        range: '10.239.252.0/24',
        mover,
      }),
    );
    const lockIf = `gxh${link.slot}`;
    cleanup.push(() => exec('ip', ['link', 'del', lockIf]));
    const [shown] = JSON.parse(await exec('ip', ['-j', 'addr', 'show', 'dev', lockIf])) as {
      addr_info: { family: string; local: string; prefixlen: number }[];
    }[];
    const [detailed] = JSON.parse(await exec('ip', ['-j', '-d', 'link', 'show', 'dev', lockIf])) as {
      ifalias?: string;
    }[];
    expect(detailed?.ifalias).toBe(alias);
    expect(shown?.addr_info).toEqual([
      expect.objectContaining({ family: 'inet', local: link.hostAddress, prefixlen: 32 }),
    ]);
    // Its far end stays down: the lock carries nothing.
    expect(await exec('ip', ['-o', 'link', 'show', `gxs${link.slot}`])).toContain('state DOWN');
    await withoutTools(() => link.remove());
    expect(await exec('ip', ['-o', 'link']).then((out) => out.includes(`${lockIf}@`))).toBe(false);
  });

  it("answers a redirected connection's original destination from the kernel's table, and - for none", async () => {
    // A loopback connection to port A redirected to our listener on port B, in a table of the
    // test's own: the kernel's table then holds the connection, its reply tuple from B.
    const table = `grexal_test_ct_${process.pid}`;
    const server: Server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => new Promise((resolve) => server.close(resolve)));
    const listening = (server.address() as { port: number }).port;
    const asked = listening === 65_000 ? 65_001 : 65_000;
    await exec('nft', ['-f', '-'], {
      input: `table ip ${table} {\n chain out {\n type nat hook output priority -100;\n ip daddr 127.0.0.1 tcp dport ${asked} redirect to :${listening}\n }\n}\n`,
    });
    cleanup.push(() => exec('nft', ['delete', 'table', 'ip', table]));
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    const client = connect(asked, '127.0.0.1');
    cleanup.push(async () => client.destroy());
    await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
    const peer = await accepted;
    cleanup.push(async () => peer.destroy());
    const tuple = ['127.0.0.1', listening, '127.0.0.1', client.localPort!];
    expect(await rootHelper.request(['ct', ...tuple])).toBe(`127.0.0.1 ${asked}`);
    // No such connection (a port nobody connected from).
    expect(await rootHelper.request(['ct', '127.0.0.1', listening, '127.0.0.1', 1])).toBe('-');
  });
});
