import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ValidationError } from '../errors.ts';
import { type ConnectionsWatch, watchConnections } from './connections-watch.ts';

let dir: string;
let path: string;
let watch: ConnectionsWatch | undefined;
const initial = {
  openai: { fields: { api_key: 'sk-initial-000001' } },
  slack: { fields: { token: 'xoxb-000001' } },
};

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'grexal-watch-'));
  path = join(dir, 'connections.json');
  await writeFile(path, JSON.stringify(initial));
});
afterEach(async () => {
  watch?.close();
  await rm(dir, { recursive: true, force: true });
});

function target() {
  const calls: string[] = [];
  return {
    calls,
    updateCredential: async (id: string, credential: unknown) => {
      const value = JSON.stringify(credential);
      if (value.includes('short'))
        throw new ValidationError([
          { code: 'E_SECRET_TOO_SHORT', path: 'fields.api_key', message: 'too short.' },
        ]);
      calls.push(`put ${id} ${value}`);
      return { restored: id === 'gmail' };
    },
    removeCredential: async (id: string) => {
      calls.push(`delete ${id}`);
    },
  };
}

describe('grexal dev: edits of the connections file while the agent runs', () => {
  it('rotates changed entries, removes deleted ones, and leaves the rest alone', async () => {
    const t = target();
    const log: string[] = [];
    watch = watchConnections(path, initial, t, { apply: true, log: (l) => log.push(l), intervalMs: 60_000 });
    await writeFile(path, JSON.stringify({ openai: { fields: { api_key: 'sk-rotated-000002' } } }));
    await watch.check();
    expect(t.calls).toEqual(['put openai {"fields":{"api_key":"sk-rotated-000002"}}', 'delete slack']);
    expect(log).toEqual(['openai: rotated in the running agent', 'slack: removed from the running agent']);
    await watch.check();
    expect(t.calls).toHaveLength(2);
  });

  it('only reports edits without --watch-connections, and never applies a refused or unfinished one', async () => {
    const t = target();
    const log: string[] = [];
    watch = watchConnections(path, initial, t, { apply: false, log: (l) => log.push(l), intervalMs: 60_000 });
    await writeFile(
      path,
      JSON.stringify({ ...initial, openai: { fields: { api_key: 'sk-rotated-000002' } } }),
    );
    await watch.check();
    expect(t.calls).toEqual([]);
    expect(log[0]).toMatch(/openai changed .*--watch-connections/);

    const applying = watchConnections(path, initial, t, {
      apply: true,
      log: (l) => log.push(l),
      intervalMs: 60_000,
      isPlaceholder: (v) => JSON.stringify(v).includes('<fill in'),
    });
    await writeFile(
      path,
      JSON.stringify({
        openai: { fields: { api_key: 'short' } },
        slack: { fields: { token: '<fill in: token>' } },
      }),
    );
    await applying.check();
    applying.close();
    expect(t.calls).toEqual([]);
    expect(log.slice(1)).toEqual([
      'openai: not applied: fields.api_key: too short. [E_SECRET_TOO_SHORT]',
      "slack: still the template's placeholder; not applied",
    ]);
    await writeFile(path, '{"openai": ');
    await applying.check();
    expect(log.at(-1)).toMatch(/not a JSON object/);
  });
});
