import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { currentInstanceId } from './instance.ts';
import { IDS_DIR, InstanceIds } from './instance-ids.ts';

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'grexal-ids-'));
});
afterEach(async () => {
  await rm(stateDir, { recursive: true, force: true });
});

/** An instance of this host whose process is gone. */
const DEAD = `${hostname()}/999999999-1`;

describe('instance ids', () => {
  it('mints unguessable sandbox and takeover ids that this instance knows as its own', async () => {
    const ids = await InstanceIds.open(stateDir, currentInstanceId());
    const sbx = ids.mint('sbx');
    const tk = ids.mint('tk');
    expect(sbx).toMatch(/^sbx_[0-9a-f]{40}$/);
    expect(tk).toMatch(/^tk_[A-Za-z0-9_-]{30}$/);
    expect(ids.mint('sbx')).not.toBe(sbx);
    expect(ids.origin(sbx)).toBe('current');
    expect(ids.origin(tk)).toBe('current');
  });

  it("places a stopped runner's ids as earlier, and a live one's as another runner's", async () => {
    const stopped = await InstanceIds.open(stateDir, DEAD);
    const live = await InstanceIds.open(stateDir, currentInstanceId());
    const fresh = await InstanceIds.open(stateDir, currentInstanceId());
    expect(fresh.origin(stopped.mint('sbx'))).toBe('earlier');
    expect(fresh.origin(stopped.mint('tk'))).toBe('earlier');
    expect(fresh.origin(live.mint('sbx'))).toBe('other_live');
  });

  it('prunes the records of dead instances at start, and still places their ids', async () => {
    const stopped = await InstanceIds.open(stateDir, DEAD);
    const id = stopped.mint('sbx');
    const records = join(stateDir, IDS_DIR, 'instances');
    expect(await readdir(records)).toHaveLength(1);
    const next = await InstanceIds.open(stateDir, currentInstanceId());
    expect(await readdir(records)).toHaveLength(1);
    expect(next.origin(id)).toBe('earlier');
  });

  it('knows nothing of random, tampered, re-spelt or foreign ids', async () => {
    const stopped = await InstanceIds.open(stateDir, DEAD);
    const id = stopped.mint('sbx');
    const tk = stopped.mint('tk');
    const ids = await InstanceIds.open(stateDir, currentInstanceId());
    const other = await mkdtemp(join(tmpdir(), 'grexal-ids-other-'));
    try {
      const foreign = await InstanceIds.open(other, DEAD);
      expect(ids.origin(foreign.mint('sbx'))).toBe('unknown');
    } finally {
      await rm(other, { recursive: true, force: true });
    }
    const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === '0' ? '1' : '0') + s.slice(i + 1);
    expect(ids.origin(flip(id, id.length - 1))).toBe('unknown');
    expect(ids.origin(flip(id, 5))).toBe('unknown');
    expect(ids.origin(id.toUpperCase().replace('SBX', 'sbx'))).toBe('unknown');
    expect(ids.origin(`tk_${id.slice(4)}`)).toBe('unknown');
    expect(ids.origin(`sbx_${tk.slice(3)}`)).toBe('unknown');
    expect(ids.origin('sbx_never')).toBe('unknown');
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.stringMatching(/^(sbx|tk)_[0-9a-f]{40}$/), (s, hex) => {
        expect(ids.origin(s)).toBe('unknown');
        expect(ids.origin(hex)).toBe('unknown');
      }),
      { numRuns: 300 },
    );
  });
});
