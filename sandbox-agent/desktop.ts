/**
 * The desktop of a `browser_login` sandbox, started by the supervisor before the agent, as the
 * agent user: Xvfb, a window manager, x11vnc serving the screen on a Unix socket in /run/grexal
 * (never on a network interface; the runner bridges it to the takeover page), and Chromium with
 * its DevTools endpoint on the sandbox's own loopback for the agent (GREXAL_CDP_URL).
 *
 * Each piece is waited for by polling what it serves (the X socket, the VNC greeting,
 * /json/version), never with a fixed sleep. Desktop processes get the supervisor's environment,
 * not the agent's: no credential reaches them.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  cdpAnswers,
  DesktopProcess,
  displayNumber,
  socketAnswers,
  type WaitOptions,
  waitFor,
} from './desktop-process.ts';
import { SANDBOX_RUN_DIR, VNC_SOCKET_NAME } from './wire.ts';

export interface StartDesktopOptions {
  width: number;
  height: number;
  signal?: AbortSignal;
  /** For the whole start. Default 60000 (Chromium's first start on a busy host takes seconds). */
  timeoutMs?: number;
  /** Where vnc.sock goes. Default /run/grexal. */
  runDir?: string;
  /** Chromium's DevTools port on 127.0.0.1. Default 9222. */
  cdpPort?: number;
}

export interface Desktop {
  /** For the agent: DISPLAY and GREXAL_CDP_URL. */
  env: Record<string, string>;
  /** Stops Chromium, x11vnc, the window manager and Xvfb, and removes vnc.sock. */
  stop(): Promise<void>;
}

const VNC_GREETING = /^RFB \d{3}\.\d{3}\n$/;

export async function startDesktop(options: StartDesktopOptions): Promise<Desktop> {
  const runDir = options.runDir ?? SANDBOX_RUN_DIR;
  const vncSocket = join(runDir, VNC_SOCKET_NAME);
  const cdpPort = options.cdpPort ?? 9222;
  const processes: DesktopProcess[] = [];
  const stop = async (): Promise<void> => {
    for (const p of processes.splice(0).reverse()) await p.stop();
    rmSync(vncSocket, { force: true });
  };
  const wait: WaitOptions = {
    deadline: Date.now() + (options.timeoutMs ?? 60_000),
    watch: processes,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  try {
    const xvfb = new DesktopProcess('Xvfb', 'Xvfb', xvfbArgs(options), process.env, true);
    processes.push(xvfb);
    const display = `:${await displayNumber(xvfb, wait)}`;
    await waitFor('the X display', () => socketAnswers(`/tmp/.X11-unix/X${display.slice(1)}`), wait);
    const env = { ...process.env, DISPLAY: display };
    // matchbox shows every window full screen with no title bar: the login page fills the stream.
    processes.push(
      new DesktopProcess('the window manager', 'matchbox-window-manager', ['-use_titlebar', 'no'], env),
    );
    rmSync(vncSocket, { force: true });
    processes.push(new DesktopProcess('x11vnc', 'x11vnc', x11vncArgs(display, vncSocket), env));
    // Without a session bus Chromium would start one (dbus-x11) for nothing it needs here.
    const chromiumEnv = { ...env, DBUS_SESSION_BUS_ADDRESS: 'disabled:' };
    processes.push(new DesktopProcess('Chromium', 'chromium', chromiumArgs(options, cdpPort), chromiumEnv));
    await Promise.all([
      waitFor('x11vnc on vnc.sock', () => socketAnswers(vncSocket, VNC_GREETING), wait),
      waitFor(`Chromium's DevTools on port ${cdpPort}`, () => cdpAnswers(cdpPort), wait),
    ]);
    return { env: { DISPLAY: display, GREXAL_CDP_URL: `http://127.0.0.1:${cdpPort}` }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function xvfbArgs({ width, height }: StartDesktopOptions): string[] {
  // -displayfd: Xvfb picks a free display and writes its number on fd 3 once it accepts clients.
  return [
    '-displayfd',
    '3',
    '-screen',
    '0',
    `${width}x${height}x24`,
    '-nolisten',
    'tcp',
    '-noreset',
    '-dpi',
    '96',
  ];
}

function x11vncArgs(display: string, vncSocket: string): string[] {
  return [
    ...['-display', display],
    // No TCP port at all, IPv4 or IPv6: only the Unix socket, reached from the host by the runner.
    ...['-rfbport', '0', '-rfbportv6', '0', '-no6', '-noipv6', '-unixsock', vncSocket],
    // Every viewer has its own connection (the bridge gives each one); none may kick the others.
    ...['-shared', '-alwaysshared', '-forever'],
    // No password: the socket is reachable only through the runner, which checks the takeover token.
    '-nopw',
    // Nothing from a viewer or a file may run commands or change settings.
    ...['-norc', '-nocmds', '-noremote'],
    // Paste goes into the sandbox (PRIMARY and CLIPBOARD); the sandbox's clipboard is not sent out.
    ...['-seldir', 'recv'],
    // Poll and send every 5 ms instead of x11vnc's 20 (measured: a 1×1 update round trip 21 → 1.2 ms,
    // full 1280×800 frames 42 → 280/s); it naps when the screen is idle, so idle CPU stays nil.
    ...['-defer', '5', '-wait', '5'],
    '-xkb',
    '-quiet',
  ];
}

function chromiumArgs({ width, height }: StartDesktopOptions, cdpPort: number): string[] {
  const home = process.env['HOME'] ?? '/home/agent';
  return [
    // Chromium's own sandbox needs user namespaces or a setuid helper, and the container allows
    // neither (non-root, no-new-privileges, all capabilities dropped): the container is the sandbox.
    '--no-sandbox',
    // Without it Chromium shows a "--no-sandbox is unsupported" warning bar across the very page
    // the user is asked to log in to (chromedriver passes the same flag for the same reason).
    '--test-type',
    `--user-data-dir=${join(home, '.config', 'grexal-chromium')}`,
    // DevTools on the sandbox's loopback only: the agent's playwright-core connects over CDP.
    '--remote-debugging-address=127.0.0.1',
    `--remote-debugging-port=${cdpPort}`,
    // No calls home, no updates, no sync, no first-run prompts: quiet and lean.
    ...['--no-first-run', '--no-default-browser-check', '--disable-background-networking'],
    ...[
      '--disable-component-update',
      '--disable-sync',
      '--disable-default-apps',
      '--disable-domain-reliability',
    ],
    ...[
      '--disable-client-side-phishing-detection',
      '--metrics-recording-only',
      '--no-pings',
      '--disable-breakpad',
    ],
    ...[
      '--password-store=basic',
      '--use-mock-keychain',
      '--disable-features=Translate,MediaRouter,OptimizationHints',
    ],
    ...['--noerrdialogs', '--disable-session-crashed-bubble', '--hide-crash-restore-bubble'],
    // No GPU in Xvfb: draw in software without starting a GPU process.
    '--disable-gpu',
    ...['--window-position=0,0', `--window-size=${width},${height}`, '--start-maximized'],
    'about:blank',
  ];
}
