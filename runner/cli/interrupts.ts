/**
 * Ctrl-C and SIGTERM abort the command, which then destroys its sandboxes. A second signal must not
 * kill the process halfway through that cleanup (a container would outlive it until the next
 * runner reaps it): it only says what is going on. A third one quits at once.
 *
 * A prompt that Ctrl-C answers (`grexal dev`'s local takeover: Ctrl-C cancels it) takes Ctrl-C
 * for itself while it is open (`intercept`); SIGTERM still aborts.
 */
export interface Interrupts {
  signal: AbortSignal;
  /** While the returned function has not been called, Ctrl-C calls `handler` instead of aborting. */
  intercept(handler: () => void): () => void;
  dispose(): void;
}

export function abortOnSignals(stderr: NodeJS.WritableStream): Interrupts {
  const controller = new AbortController();
  const interceptors: Array<() => void> = [];
  let count = 0;
  const onSignal = (): void => {
    count++;
    if (count === 1) controller.abort(new Error('interrupted'));
    else if (count === 2) stderr.write('grexal: still cleaning up; interrupt once more to quit now\n');
    else process.exit(130);
  };
  const onInterrupt = (): void => {
    const interceptor = interceptors.at(-1);
    if (interceptor && count === 0) interceptor();
    else onSignal();
  };
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    intercept(handler) {
      interceptors.push(handler);
      return () => {
        const at = interceptors.lastIndexOf(handler);
        if (at !== -1) interceptors.splice(at, 1);
      };
    },
    dispose: () => {
      process.off('SIGINT', onInterrupt);
      process.off('SIGTERM', onSignal);
    },
  };
}
