/**
 * runNft against the real kernel: through the libnftables helper, a script is one transaction
 * (all of it or none), a refused one fails with nft's own message, and without the helper the
 * same script goes through `nft -f -`. Each case works in a table of its own, removed after.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LineHelper } from '../runner/host/line-helper.ts';
import { ExecFailure, exec } from '../runner/network/exec.ts';
import { runNft } from '../runner/network/nft-run.ts';

// Not `grexal_…`: the runner's reaper owns those names.
const TABLE = `grexaltest_${process.pid}`;
const listing = () => exec('nft', ['list', 'table', 'inet', TABLE]).catch(() => '');

afterEach(async () => {
  await exec('nft', ['delete', 'table', 'inet', TABLE]).catch(() => {});
});

describe('runNft', () => {
  it('applies a script through libnftables, with no nft(8) on PATH', async () => {
    const path = process.env['PATH'];
    // exec's fallback would fail here: what is applied, the helper applied.
    process.env['PATH'] = '/nonexistent';
    try {
      await runNft(
        `add table inet ${TABLE}\nadd chain inet ${TABLE} c\nadd rule inet ${TABLE} c ip daddr 192.0.2.7 drop\n`,
      );
    } finally {
      process.env['PATH'] = path;
    }
    expect(await listing()).toContain('ip daddr 192.0.2.7 drop');
  });

  it('applies all of a script or none of it, and says what nft said', async () => {
    await runNft(`add table inet ${TABLE}\nadd chain inet ${TABLE} c\n`);
    const error = await runNft(
      `add rule inet ${TABLE} c ip daddr 192.0.2.8 drop\nadd rule inet ${TABLE} nonesuch accept\n`,
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExecFailure);
    // (libnftables 1.0.6 quotes the buffer's first line under the error, with the right columns.)
    expect((error as ExecFailure).stderr).toMatch(/Error: Could not process rule: No such file or directory/);
    expect(await listing()).not.toContain('192.0.2.8');
    // The helper goes on after a refused script.
    await runNft(`add rule inet ${TABLE} c ip daddr 192.0.2.9 drop\n`);
    expect(await listing()).toContain('ip daddr 192.0.2.9 drop');
  });

  it('goes through `nft -f -` when the helper cannot run, with the same errors', async () => {
    const gone = new LineHelper('import sys; sys.exit(3)');
    await runNft(`add table inet ${TABLE}\nadd chain inet ${TABLE} c\n`, gone);
    expect(await listing()).toContain('chain c');
    const error = await runNft(`add rule inet ${TABLE} nonesuch accept\n`, gone).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExecFailure);
    expect((error as ExecFailure).stderr).toMatch(/No such file or directory/);
  });
});
