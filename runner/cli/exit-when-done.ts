/**
 * Ends the CLI's process with a command's exit code once its output is flushed: idle engine sockets
 * must not keep it alive. A rejection ends the process as an uncaught error would (CommonJS entries
 * have no top-level await).
 */
export function exitWhenDone(done: Promise<number>, beforeExit?: () => void): void {
  void done.then((code) => {
    beforeExit?.();
    process.stdout.write('', () => process.exit(code));
  });
}
