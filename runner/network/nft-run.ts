/**
 * Runs an nft script as one transaction. Through a long-lived python3 helper that calls
 * libnftables (the library nft(8) itself is, loaded with ctypes) when it can: a transaction then
 * takes ~0.2 ms, where spawning `nft -f -` took ~28 ms here, ~7 ms of it the fork of this 80 MB
 * process, which holds the event loop. That spawn was on the path of every claim (a pool entry's
 * network policy is written before its bootstrap is answered) and of every first connection to a
 * newly resolved name. Without python3 or libnftables, or once the helper has died, `nft -f -` as
 * before; a script the kernel refuses fails alike either way (ExecFailure, with nft's message).
 */
import { ExecFailure, exec } from './exec.ts';
import { LineHelper } from './line-helper.ts';

/** A script that wedges netlink must not hang a sandbox's start (exec's deadline, the same). */
const TIMEOUT_MS = 10_000;

/**
 * One request per line: its number and the script in base64; answers `ok`, or `err` and nft's
 * messages in base64. nft's output goes to a buffer, never to this protocol's stdout.
 */
const HELPER = String.raw`
import base64, ctypes, sys
lib = ctypes.CDLL('libnftables.so.1')
lib.nft_ctx_new.restype = ctypes.c_void_p
lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
for name in ('nft_ctx_buffer_output', 'nft_ctx_buffer_error'):
    getattr(lib, name).argtypes = [ctypes.c_void_p]
for name in ('nft_ctx_get_output_buffer', 'nft_ctx_get_error_buffer'):
    getattr(lib, name).argtypes = [ctypes.c_void_p]
    getattr(lib, name).restype = ctypes.c_char_p
lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
ctx = lib.nft_ctx_new(0)
if not ctx or lib.nft_ctx_buffer_output(ctx) or lib.nft_ctx_buffer_error(ctx):
    sys.exit(3)
for line in sys.stdin:
    number, _, script = line.partition(' ')
    failed = lib.nft_run_cmd_from_buffer(ctx, base64.b64decode(script))
    lib.nft_ctx_get_output_buffer(ctx)
    errors = lib.nft_ctx_get_error_buffer(ctx) or b''
    sys.stdout.write(number + (' err ' + base64.b64encode(errors).decode() if failed else ' ok') + '\n')
    sys.stdout.flush()
`;

const helper = new LineHelper(HELPER);

/** Runs `script` (nft's syntax) as one transaction; ExecFailure if refused. */
export async function runNft(script: string, via: LineHelper = helper): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const answer = await Promise.race([
    via.request([Buffer.from(script).toString('base64')]),
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), TIMEOUT_MS).unref();
    }),
  ]).finally(() => clearTimeout(timer));
  if (answer === 'timeout') {
    // Whatever it was doing is stuck: a later script gets a new helper.
    via.close();
    throw new ExecFailure('nft (libnftables)', `no answer within ${TIMEOUT_MS / 1000} s`, null);
  }
  if (answer === undefined) {
    await exec('nft', ['-f', '-'], { input: script });
    return;
  }
  if (answer === 'ok') return;
  const errors = answer.startsWith('err ') ? Buffer.from(answer.slice(4), 'base64').toString() : answer;
  throw new ExecFailure('nft -f -', errors, 1);
}
