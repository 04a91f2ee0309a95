/**
 * The desktop of a `browser_login` sandbox, started by the supervisor before the agent, as the
 * agent user: the display stack (display-stack.ts: an X server serving its screen over RFB on a
 * Unix socket in /run/grexal, never on a network interface; the runner bridges it to the takeover
 * page), a window manager, and Chromium with its DevTools endpoint on the sandbox's own loopback
 * for the agent (GREXAL_CDP_URL).
 *
 * Each piece is waited for by polling what it serves (the X socket, the VNC greeting,
 * /json/version), never with a fixed sleep. Desktop processes get the supervisor's environment,
 * not the agent's: no credential reaches them.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type BrowserWatch, startBrowserWatch } from './browser-watch.ts';
import { cdpAnswers, DesktopProcess, type WaitOptions, waitFor } from './desktop-process.ts';
import { startDisplay } from './display-stack.ts';
import { BROWSER_SOCKET_NAME, SANDBOX_RUN_DIR, VNC_SOCKET_NAME } from './wire.ts';

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
  /** Stops the browser watch, Chromium, the window manager and the display, and removes the sockets. */
  stop(): Promise<void>;
}

export async function startDesktop(options: StartDesktopOptions): Promise<Desktop> {
  const runDir = options.runDir ?? SANDBOX_RUN_DIR;
  const vncSocket = join(runDir, VNC_SOCKET_NAME);
  const browserSocket = join(runDir, BROWSER_SOCKET_NAME);
  const cdpPort = options.cdpPort ?? 9222;
  const processes: DesktopProcess[] = [];
  let browserWatch: BrowserWatch | undefined;
  const stop = async (): Promise<void> => {
    await browserWatch?.close();
    for (const p of processes.splice(0).reverse()) await p.stop();
    rmSync(vncSocket, { force: true });
    rmSync(browserSocket, { force: true });
  };
  const wait: WaitOptions = {
    deadline: Date.now() + (options.timeoutMs ?? 60_000),
    watch: processes,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  try {
    rmSync(vncSocket, { force: true });
    const { display } = await startDisplay({ width: options.width, height: options.height, vncSocket }, wait);
    const env = { ...process.env, DISPLAY: display };
    // matchbox shows every window full screen with no title bar: the login page fills the stream,
    // and follows the screen when the viewer resizes it.
    processes.push(
      new DesktopProcess('the window manager', 'matchbox-window-manager', ['-use_titlebar', 'no'], env),
    );
    // Without a session bus Chromium would start one (dbus-x11) for nothing it needs here.
    const chromiumEnv = { ...env, DBUS_SESSION_BUS_ADDRESS: 'disabled:' };
    processes.push(new DesktopProcess('Chromium', 'chromium', chromiumArgs(options, cdpPort), chromiumEnv));
    await waitFor(`Chromium's DevTools on port ${cdpPort}`, () => cdpAnswers(cdpPort), wait);
    // Where the runner watches a takeover's `until` (the browser's URL or a cookie).
    rmSync(browserSocket, { force: true });
    browserWatch = await startBrowserWatch(browserSocket, cdpPort);
    return { env: { DISPLAY: display, GREXAL_CDP_URL: `http://127.0.0.1:${cdpPort}` }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
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
    // No GPU in the X server: draw in software without starting a GPU process.
    '--disable-gpu',
    ...['--window-position=0,0', `--window-size=${width},${height}`, '--start-maximized'],
    'about:blank',
  ];
}
