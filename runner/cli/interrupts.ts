/**
 * Ctrl-C and SIGTERM abort the command, which then destroys its sandboxes. A second signal must not
 * kill the process halfway through that cleanup (a container would outlive it until the next
 * runner reaps it): it only says what is going on. A third one quits at once.
 */
export function abortOnSignals(stderr: NodeJS.WritableStream): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  let count = 0;
  const onSignal = (): void => {
    count++;
    if (count === 1) controller.abort(new Error('interrupted'));
    else if (count === 2) stderr.write('grexal: still cleaning up; interrupt once more to quit now\n');
    else process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
