import { describe, expect, it } from 'vitest';
import { Reauthorisation } from './reauthorisation.ts';

describe('Reauthorisation', () => {
  it('answers at once once a wait has timed out, even if the wall clock lags the timer', async () => {
    // A clock that never moves: the timer fires while now() is still before the deadline.
    const reauth = new Reauthorisation(() => 1_000);
    const waiting: number[] = [];
    reauth.onWaiting((n) => waiting.push(n));
    reauth.broke('gmail', 10);
    await expect(reauth.wait('gmail')).rejects.toMatchObject({ code: 'broken' });
    expect(reauth.waitable('gmail')).toBe(false);
    await expect(reauth.wait('gmail')).rejects.toMatchObject({ code: 'broken' });
    expect(waiting).toEqual([1, 0]);
  });
});
