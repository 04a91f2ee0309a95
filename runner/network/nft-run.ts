/**
 * Runs an nft script as one transaction. Through the root helper (../host/root-helper.ts), which
 * calls libnftables (the library nft(8) itself is, loaded with ctypes), when it can: a transaction
 * then takes ~0.2 ms, where spawning `nft -f -` took ~28 ms here, ~7 ms of it the fork of this
 * 80 MB process, which holds the event loop. That spawn was on the path of every claim (a pool
 * entry's network policy is written before its bootstrap is answered) and of every first
 * connection to a newly resolved name. Without python3 or libnftables, or once the helper has
 * died, `nft -f -` as before; a script the kernel refuses fails alike either way (ExecFailure,
 * with nft's message).
 */
import type { LineHelper } from '../host/line-helper.ts';
import { base64, rootHelper } from '../host/root-helper.ts';
import { ExecFailure, exec } from './exec.ts';

/** A script that wedges netlink must not hang a sandbox's start (exec's deadline, the same). */
const TIMEOUT_MS = 10_000;

/** Runs `script` (nft's syntax) as one transaction; ExecFailure if refused. */
export async function runNft(script: string, via: LineHelper = rootHelper): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const answer = await Promise.race([
    via.request(['nft', base64(script)]),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), TIMEOUT_MS).unref();
    }),
  ]).finally(() => clearTimeout(timer));
  if (answer === 'timeout') {
    // Whatever it was doing is stuck: a later script gets a new helper.
    via.close();
    throw new ExecFailure('nft (libnftables)', `no answer within ${TIMEOUT_MS / 1000} s`, null);
  }
  if (answer === undefined || answer === 'unavailable') {
    await exec('nft', ['-f', '-'], { input: script });
    return;
  }
  if (answer === 'ok') return;
  const errors = answer.startsWith('err ') ? Buffer.from(answer.slice(4), 'base64').toString() : answer;
  throw new ExecFailure('nft -f -', errors, 1);
}
