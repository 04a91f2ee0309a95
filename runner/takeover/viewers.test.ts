import { describe, expect, it } from 'vitest';
import { CLOSE_CODES, type Viewer } from './types.ts';
import { ViewerSet } from './viewers.ts';

function fake(key: string | undefined, held: Buffer[] = []): Viewer & { events: string[] } {
  const events: string[] = [];
  return {
    ...(key === undefined ? {} : { key }),
    events,
    close: (code) => events.push(`close ${code}`),
    surrender: () => {
      events.push('surrender');
      return held.splice(0);
    },
  };
}

describe('ViewerSet', () => {
  it('hands the replaced controller’s held input to the connection with its key, taken before it closes', () => {
    const set = new ViewerSet();
    const key = 'page-key-0123456789';
    const old = fake(key, [Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61])]);
    expect(set.add(old).replaced).toBe(false);
    const lease = set.add(fake(key));
    expect(old.events).toEqual(['surrender', `close ${CLOSE_CODES.replaced}`]);
    expect(lease.replaced).toBe(true);
    expect(lease.controls).toBe(true);
    expect(lease.carried).toEqual([Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61])]);
  });

  it('takes nothing from a controller with another key, or none', () => {
    const set = new ViewerSet();
    const user = fake('page-key-0123456789', [Buffer.from([4])]);
    set.add(user);
    const watcher = set.add(fake('other-key-0123456789'));
    const anonymous = set.add(fake(undefined));
    expect(user.events).toEqual([]);
    expect([watcher.replaced, watcher.carried, anonymous.carried]).toEqual([false, [], []]);
  });
});
