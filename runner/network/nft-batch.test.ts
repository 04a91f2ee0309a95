import { describe, expect, it } from 'vitest';
import { batched } from './nft-batch.ts';

/** A fake `nft -f`: records each transaction, refuses any that holds `bad`. */
function fakeNft() {
  const transactions: string[] = [];
  let release: (() => void) | undefined;
  const run = (script: string) => {
    transactions.push(script);
    return new Promise<void>((resolve, reject) => {
      release = () => (script.includes('bad') ? reject(new Error('refused')) : resolve());
    }).finally(() => {
      release = undefined;
    });
  };
  const finishOne = async () => {
    for (let i = 0; i < 50 && !release; i++) await new Promise((r) => setImmediate(r));
    release?.();
  };
  return { transactions, run, finishOne };
}

describe('batched nft', () => {
  it('sends a lone script at once, and what arrives meanwhile as one transaction, in order', async () => {
    const nft = fakeNft();
    const send = batched(nft.run);
    const first = send('add a');
    const rest = [send('add b'), send('add c\n')];
    expect(nft.transactions).toEqual(['add a\n']);
    await nft.finishOne();
    await first;
    await nft.finishOne();
    await Promise.all(rest);
    expect(nft.transactions).toEqual(['add a\n', 'add b\nadd c\n']);
  });

  it('retries a refused batch script by script: only the bad one fails', async () => {
    const nft = fakeNft();
    const send = batched(nft.run);
    const first = send('add a');
    const good = send('add b');
    const bad = send('bad c');
    await nft.finishOne();
    await first;
    const results = Promise.allSettled([good, bad]);
    for (let i = 0; i < 3; i++) await nft.finishOne();
    expect((await results).map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    expect(nft.transactions).toEqual(['add a\n', 'add b\nbad c\n', 'add b\n', 'bad c\n']);
  });
});
