/**
 * `grexal dev`'s browser: a Chromium window on the developer's own display, a child of the runner,
 * spoken to over `--remote-debugging-pipe` (fds 3 and 4) so that no DevTools port opens on the
 * host at all. Each launch gets a fresh profile in a temporary directory, removed however the run
 * ends (close(), a failed start, an interrupt, the process exiting).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import { quietChromiumFlags } from '../../sandbox-agent/chromium-quiet.ts';
import { GrexalError } from '../errors.ts';
import { type CdpConnection, type CdpUpstream, nulFramedConnection } from './cdp-connection.ts';

export const DEFAULT_CHROMIUM_PATH = '/usr/bin/chromium';
const DEFAULT_START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;
const GROUP_GONE_WAIT_MS = 3_000;
const STDERR_TAIL_BYTES = 4096;
const PROFILE_PREFIX = 'grexal-chromium-';
const OWNER_FILE = 'owner.pid';

export interface LocalChromiumOptions {
  logger: Logger;
  /** Default /usr/bin/chromium. */
  executablePath?: string;
  /** Default false: a window on `display`. Tests of the relay run it headless. */
  headless?: boolean;
  /** The X display of the window. Default $DISPLAY. */
  display?: string;
  /** The page the window opens on. Default about:blank. */
  startUrl?: string;
  signal?: AbortSignal;
  /** How long Chromium has to answer over the pipe. Default 30 000. */
  timeoutMs?: number;
}

/** What is missing for a local browser, with the fix; undefined when nothing is. */
export function localBrowserProblem(
  options: Pick<LocalChromiumOptions, 'executablePath' | 'headless' | 'display'>,
): GrexalError | undefined {
  const path = options.executablePath ?? DEFAULT_CHROMIUM_PATH;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    return new GrexalError(
      'E_BROWSER_NOT_FOUND',
      `No Chromium at ${path} for the local browser. Install chromium (apt-get install chromium), or run with --browser desktop to use a desktop sandbox instead.`,
    );
  }
  const display = options.display ?? process.env['DISPLAY'];
  if (!options.headless && !display)
    return new GrexalError(
      'E_BROWSER_NO_DISPLAY',
      'No display for the local browser window: DISPLAY is not set. Run grexal dev in a desktop session (or set DISPLAY), or run with --browser desktop to use a desktop sandbox instead.',
    );
  return undefined;
}

export class LocalChromium implements CdpUpstream, AsyncDisposable {
  private connection?: CdpConnection;
  private opened = false;
  private closeStarted?: Promise<void>;
  private pipeClosed = false;
  /** The last resort when the process exits without close() (a third Ctrl-C, process.exit). */
  private readonly removeOnExit = () => {
    this.signalGroup('SIGKILL');
    rmSync(this.profileRoot, { recursive: true, force: true });
  };
  readonly exited: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    /** The temporary directory holding the profile; gone after close(). */
    readonly profileRoot: string,
    private readonly logger: Logger,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    process.once('exit', this.removeOnExit);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Where the relay puts agents' downloads: inside the temporary directory, so they go with it. */
  get downloadsDir(): string {
    return join(this.profileRoot, 'downloads');
  }

  /** Launches Chromium and waits until it answers over the pipe; on any failure nothing remains. */
  static async launch(options: LocalChromiumOptions): Promise<LocalChromium> {
    const problem = localBrowserProblem(options);
    if (problem) throw problem;
    const logger = options.logger.child({ component: 'local-chromium' });
    await removeStaleProfiles(logger);
    const profileRoot = await mkdtemp(join(tmpdir(), PROFILE_PREFIX));
    // Whose it is: a runner killed outright (SIGKILL) leaves it, and the next launch removes it.
    await writeFile(join(profileRoot, OWNER_FILE), `${process.pid}\n`);
    await mkdir(join(profileRoot, 'downloads'));
    const args = [
      '--remote-debugging-pipe',
      `--user-data-dir=${join(profileRoot, 'profile')}`,
      // Quiet on a closed network: nothing phones home, nothing asks the developer anything.
      ...quietChromiumFlags(),
      ...(options.headless ? ['--headless=new'] : []),
      // Chromium refuses to run as root with its sandbox on; a root runner (CI) gets none.
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      options.startUrl ?? 'about:blank',
    ];
    const env = { ...process.env, ...(options.display ? { DISPLAY: options.display } : {}) };
    let child: ChildProcess;
    try {
      child = spawn(options.executablePath ?? DEFAULT_CHROMIUM_PATH, args, {
        // Its own process group: Ctrl-C reaches the runner only, and close() ends the whole tree.
        detached: true,
        env,
        stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
      });
    } catch (error) {
      await rm(profileRoot, { recursive: true, force: true });
      throw new GrexalError(
        'E_BROWSER_START_FAILED',
        `Chromium could not be started: ${(error as Error).message}`,
      );
    }
    const browser = new LocalChromium(child, profileRoot, logger);
    try {
      await browser.waitReady(options);
      return browser;
    } catch (error) {
      await browser.close();
      throw error;
    }
  }

  private async waitReady(options: LocalChromiumOptions): Promise<void> {
    let stderrTail = '';
    this.child.stderr?.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString()).slice(-STDERR_TAIL_BYTES);
    });
    const stdio = this.child.stdio as unknown as [unknown, unknown, Readable, Writable, Readable];
    const connection = nulFramedConnection({ readable: stdio[4], writable: stdio[3] });
    this.connection = connection;
    const timeoutMs = options.timeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    const failed = (why: string) =>
      new GrexalError(
        'E_BROWSER_START_FAILED',
        `The local Chromium ${why}. Its last output: ${stderrTail.trim().split('\n').slice(-3).join(' | ') || '(none)'}`,
      );
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(failed(`did not answer within ${timeoutMs} ms`)), timeoutMs);
      const onAbort = () => reject(new GrexalError('E_ABORTED', 'Starting the local browser was cancelled.'));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      this.child.once('exit', (code, signal) => {
        done();
        reject(failed(`exited while starting (${signal ?? `code ${code}`})`));
      });
      this.child.once('error', (error) => {
        done();
        reject(failed(`could not be started (${error.message})`));
      });
      connection.onMessage((message) => {
        if (message.startsWith('{"id":0,')) {
          done();
          resolve();
        }
      });
      connection.send(JSON.stringify({ id: 0, method: 'Browser.getVersion' }));
    });
    this.logger.info({ pid: this.child.pid }, 'local Chromium started');
  }

  /** The browser-level pipe connection; there is one, so a second call is refused. */
  async open(): Promise<CdpConnection> {
    if (this.opened || !this.connection || this.connection.closed)
      throw new GrexalError(
        'E_BROWSER_UNAVAILABLE',
        'The local Chromium has one DevTools pipe, already in use or closed.',
      );
    this.opened = true;
    const connection = this.connection;
    // Chromium ends when its DevTools pipe closes: a close by whoever opened it (the relay, as
    // the run ends) is as intended as close() here.
    return {
      send: (message) => connection.send(message),
      onMessage: (listener) => connection.onMessage(listener),
      onClose: (listener) => connection.onClose(listener),
      close: () => {
        this.pipeClosed = true;
        connection.close();
      },
      get closed() {
        return connection.closed;
      },
    };
  }

  /** Ends Chromium (its whole process group) and removes the profile; idempotent. */
  close(): Promise<void> {
    this.closeStarted ??= (async () => {
      this.connection?.close();
      const exited = this.child.exitCode !== null || this.child.signalCode !== null;
      if (!exited) {
        this.signalGroup('SIGTERM');
        const timer = setTimeout(() => this.signalGroup('SIGKILL'), STOP_GRACE_MS);
        await this.exited;
        clearTimeout(timer);
      }
      // Renderers and the zygote that outlived the browser process go too, and are gone (not only
      // signalled) before close() resolves: "no browser process left" holds once it has.
      this.signalGroup('SIGKILL');
      await this.groupGone(GROUP_GONE_WAIT_MS);
      await rm(this.profileRoot, { recursive: true, force: true });
      process.off('exit', this.removeOnExit);
    })();
    return this.closeStarted;
  }

  /** True once close() was called or the pipe open() gave was closed: an exit after it is no surprise. */
  get closing(): boolean {
    return this.closeStarted !== undefined || this.pipeClosed;
  }

  private async groupGone(waitMs: number): Promise<void> {
    const pgid = this.child.pid;
    if (pgid === undefined) return;
    const deadline = Date.now() + waitMs;
    while (Date.now() < deadline) {
      if (!(await groupRuns(pgid))) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.logger.warn({ pid: pgid }, 'processes of the local Chromium outlived their SIGKILL');
  }

  private signalGroup(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // The group is gone already.
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Profiles of runners that are gone: a SIGKILL leaves no chance to remove one (Chromium itself
 * exits with its pipe). A directory whose owner still runs, or that names no owner, is kept.
 */
async function removeStaleProfiles(logger: Logger): Promise<void> {
  const root = tmpdir();
  const entries = await readdir(root).catch(() => [] as string[]);
  for (const entry of entries.filter((name) => name.startsWith(PROFILE_PREFIX))) {
    const owner = Number((await readFile(join(root, entry, OWNER_FILE), 'utf8').catch(() => '')).trim());
    if (!Number.isSafeInteger(owner) || owner <= 0 || isAlive(owner)) continue;
    await rm(join(root, entry), { recursive: true, force: true });
    logger.info({ dir: join(root, entry) }, 'removed the profile of a local browser whose runner is gone');
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a process of group `pgid` still runs. Zombies do not count: they run nothing, and who
 * reaps them (init, after Chromium exits) is not ours to wait for. Without /proc, any member.
 */
async function groupRuns(pgid: number): Promise<boolean> {
  const pids = await readdir('/proc').catch(() => undefined);
  if (!pids) return isAlive(-pgid);
  for (const pid of pids) {
    if (!/^\d+$/.test(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    // After the command's closing parenthesis: state, ppid, pgrp.
    const [state, , group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(group) === pgid && state !== 'Z' && state !== 'X') return true;
  }
  return false;
}
