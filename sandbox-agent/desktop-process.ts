/**
 * The desktop's child processes (the X/VNC server, the window manager, Chromium) and how to wait for
 * each: poll a probe until it answers, fail as soon as the process dies (with its last lines of
 * stderr), give up at a deadline. No fixed sleeps. Runs in the sandbox on the image's Node (the host's, 20 or later).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';

const TAIL_LINES = 12;

export class DesktopProcess {
  readonly child: ChildProcess;
  private readonly tail: string[] = [];
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    command: string,
    args: string[],
    env: NodeJS.ProcessEnv,
    /** Pipes past stderr: 1 for the X server's -displayfd (fd 3), 2 for Chromium's DevTools pipe (fds 3, 4). */
    extraPipes = 0,
  ) {
    // Own process group, so stop() reaches Chromium's zygote and renderers too. Output stays out of
    // the agent's log; the last lines are kept for the error if the process dies.
    this.child = spawn(command, args, {
      env,
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe', ...Array<'pipe'>(extraPipes).fill('pipe')],
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (text: string) => {
      for (const line of text.split('\n')) if (line.trim()) this.tail.push(line.trimEnd());
      this.tail.splice(0, Math.max(0, this.tail.length - TAIL_LINES));
    });
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
      this.child.once('error', (error) => {
        this.tail.push(error.message);
        this.exit ??= { code: null, signal: null };
        resolve();
      });
    });
  }

  /** Why it is gone, for an error message. */
  describe(): string {
    const how = this.exit?.signal
      ? `was killed by ${this.exit.signal}`
      : `exited with ${this.exit?.code ?? 'an error'}`;
    return `${this.name} ${how}${this.tail.length ? `: ${this.tail.join(' | ')}` : ''}`;
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    if (this.exit || this.child.pid === undefined) return;
    const pid = this.child.pid;
    const kill = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-pid, signal);
      } catch {
        // Already gone.
      }
    };
    kill('SIGTERM');
    const timer = setTimeout(() => kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

export interface WaitOptions {
  deadline: number;
  signal?: AbortSignal;
  /** Processes whose death ends the wait at once. */
  watch: DesktopProcess[];
}

/** Polls `probe` (20 ms, backing off to 200 ms) until it answers true. */
export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  options: WaitOptions,
): Promise<void> {
  for (let pause = 20; ; pause = Math.min(200, pause * 1.5)) {
    if (options.signal?.aborted) throw new Error(`desktop start cancelled while waiting for ${what}`);
    const dead = options.watch.find((p) => p.exit);
    if (dead) throw new Error(`the desktop did not start: ${dead.describe()}`);
    if (await probe()) return;
    if (Date.now() > options.deadline)
      throw new Error(`the desktop did not start: timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

/** A Unix socket accepts a connection (and, with `greeting`, sends a first line matching it). */
export function socketAnswers(path: string, greeting?: RegExp): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => {
      if (!greeting) done(true);
    });
    let text = '';
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      if (text.length >= 12) done(greeting?.test(text.slice(0, 12)) ?? true);
    });
  });
}

/** Chromium's DevTools endpoint answers `/json/version` with a browser WebSocket URL. */
export function cdpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/json/version', timeout: 1000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve(res.statusCode === 200 && body.includes('webSocketDebuggerUrl')));
      res.on('error', () => resolve(false));
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

/** Reads the X server's `-displayfd` pipe: the display number, written once the server accepts clients. */
export function displayNumber(server: DesktopProcess, options: WaitOptions): Promise<number> {
  const pipe = server.child.stdio[3] as NodeJS.ReadableStream | null | undefined;
  if (!pipe) return Promise.reject(new Error(`${server.name} has no -displayfd pipe`));
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => reject(new Error(`the desktop did not start: timed out waiting for ${server.name}`)),
      Math.max(0, options.deadline - Date.now()),
    );
    const fail = (): void => {
      clearTimeout(timer);
      reject(new Error(`the desktop did not start: ${server.describe()}`));
    };
    void server.exited.then(fail);
    options.signal?.addEventListener('abort', () => fail(), { once: true });
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      text += chunk;
      const line = /^(\d+)\n/.exec(text);
      if (!line) return;
      clearTimeout(timer);
      resolve(Number(line[1]));
    });
  });
}
