/**
 * A takeover in `grexal dev` with the local browser: no stream and no link, since the developer
 * has the browser window in front of them. The terminal says why the agent asks and waits:
 * Enter completes the takeover, Ctrl-C cancels it (the agent gets `takeover_cancelled`), and the
 * wait also ends when the takeover ends by itself (`until` held, the time ran out).
 */
import type { LocalTakeoverRequest } from '../sandbox/index.ts';

export interface LocalTakeoverIo {
  /** One line for the developer (stderr). */
  say(line: string): void;
  stdin?: NodeJS.ReadableStream;
  interceptInterrupt?: (handler: () => void) => () => void;
}

export const LOCAL_TAKEOVER_PROMPT = 'log in in the browser window, then press Enter (Ctrl-C cancels)';

const codedError = (code: string, message: string) => Object.assign(new Error(message), { code });

/** Resolves when the developer presses Enter; rejects with a protocol-coded error otherwise. */
export function askDeveloper(request: LocalTakeoverRequest, io: LocalTakeoverIo): Promise<void> {
  const who = request.label ? ` (${request.label})` : '';
  io.say(`the agent asks for a takeover${who}: ${request.reason}`);
  io.say(LOCAL_TAKEOVER_PROMPT);
  return new Promise<void>((resolve, reject) => {
    const { stdin } = io;
    const finish = (error?: Error): void => {
      releaseInterrupt?.();
      request.signal.removeEventListener('abort', onEnded);
      stdin?.off('data', onData);
      stdin?.off('end', onEnd);
      stdin?.pause();
      if (error) reject(error);
      else resolve();
    };
    const onData = (chunk: Buffer | string): void => {
      if (!String(chunk).includes('\n')) return;
      io.say('takeover done: the agent carries on');
      finish();
    };
    const onEnd = (): void => {
      // Nobody can press Enter now; `until` or the clock may still end it.
      if (request.until)
        io.say('the terminal input closed: waiting for the until condition (Ctrl-C cancels)');
      else finish(codedError('takeover_cancelled', 'The terminal input closed: nobody can press Enter.'));
    };
    const onEnded = (): void => {
      const reason = request.signal.reason as Error | undefined;
      io.say(`takeover ended: ${reason?.message ?? 'by itself'}`);
      finish(reason ?? codedError('takeover_cancelled', 'The takeover ended.'));
    };
    const releaseInterrupt = io.interceptInterrupt?.(() => {
      io.say('takeover cancelled (Ctrl-C): the agent is told');
      finish(codedError('takeover_cancelled', 'The developer cancelled the takeover (Ctrl-C).'));
    });
    if (request.signal.aborted) return onEnded();
    request.signal.addEventListener('abort', onEnded, { once: true });
    if (!stdin) return onEnd();
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}
