/**
 * The desktop of a `browser_login` sandbox, in its browser container (docs/browser.md), as that
 * container's init (`node desktop.mjs <width> <height>` under tini): the display stack
 * (display-stack.ts: an X server serving its screen over RFB on a Unix socket in this container's
 * /run/grexal, never on a network interface), a window manager, and Chromium, whose DevTools is a
 * pipe bridged to cdp.sock beside vnc.sock (cdp-pipe.ts). The agent's container mounts neither:
 * the runner alone reaches both, and relays CDP to the agent.
 *
 * Each piece is waited for by polling what it serves (the X socket, the VNC greeting, the pipe),
 * never with a fixed sleep. No credential is in this container at all.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { type CdpPipeServer, probeBrowser, serveCdpPipe } from './cdp-pipe.ts';
import { quietChromiumFlags } from './chromium-quiet.ts';
import { DesktopProcess, type WaitOptions } from './desktop-process.ts';
import { startDisplay } from './display-stack.ts';
import { CDP_SOCKET_NAME, SANDBOX_RUN_DIR, VNC_SOCKET_NAME } from './wire.ts';

const CHROMIUM_BINARY = '/usr/lib/chromium/chromium';

export interface StartDesktopOptions {
  width: number;
  height: number;
  signal?: AbortSignal;
  /** For the whole start. Default 60000 (Chromium's first start on a busy host takes seconds). */
  timeoutMs?: number;
  /** Where vnc.sock and cdp.sock go. Default /run/grexal. */
  runDir?: string;
}

export interface Desktop {
  /** DISPLAY, for the record. */
  env: Record<string, string>;
  /** Stops the DevTools bridge, Chromium, the window manager and the display, and removes the sockets. */
  stop(): Promise<void>;
}

export async function startDesktop(options: StartDesktopOptions): Promise<Desktop> {
  const runDir = options.runDir ?? SANDBOX_RUN_DIR;
  const vncSocket = join(runDir, VNC_SOCKET_NAME);
  const cdpSocket = join(runDir, CDP_SOCKET_NAME);
  const processes: DesktopProcess[] = [];
  let bridge: CdpPipeServer | undefined;
  const stop = async (): Promise<void> => {
    await bridge?.close();
    for (const p of processes.splice(0).reverse()) await p.stop();
    rmSync(vncSocket, { force: true });
    rmSync(cdpSocket, { force: true });
  };
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  const wait: WaitOptions = {
    deadline,
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
    // Without a session bus Chromium would start one (dbus-x11): its socket would be abstract, and
    // abstract sockets belong to the network namespace, which is the agent's too.
    const chromiumEnv = { ...env, DBUS_SESSION_BUS_ADDRESS: 'disabled:' };
    // The binary, not Debian's /usr/bin/chromium wrapper: it adds flags of its own
    // (--enable-gpu-rasterization, extension options) and a shell in between.
    const chromium = new DesktopProcess('Chromium', CHROMIUM_BINARY, chromiumArgs(options), chromiumEnv, 2);
    processes.push(chromium);
    const pipe = {
      toBrowser: chromium.child.stdio[3] as Writable,
      fromBrowser: chromium.child.stdio[4] as Readable,
    };
    await Promise.race([
      probeBrowser(pipe, Math.max(0, deadline - Date.now())),
      chromium.exited.then(() =>
        Promise.reject(new Error(`the desktop did not start: ${chromium.describe()}`)),
      ),
    ]);
    bridge = await serveCdpPipe(cdpSocket, pipe);
    return { env: { DISPLAY: display }, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * Idle memory (issue 12: ≤ 200 MiB for the desktop sandbox): no WebUI preloaded for the toolbar's
 * bubbles, reload button or omnibox popup, no spare renderer kept for a next tab.
 */
const LEAN_FEATURES = [
  'PreloadTopChromeWebUI',
  'SpareRendererForSitePerProcess',
  'WebUIReloadButton',
  'WebUIOmniboxPopup',
  // Chromium 156 keeps a renderer of its own (chrome://omnibox-popup.top-chrome/…aim) for the
  // omnibox's AI-mode popup, WebUIOmniboxPopup or not: ~76 MiB PSS. The views popup serves instead.
  'WebUIOmniboxAimPopup',
];

export function chromiumArgs({ width, height }: StartDesktopOptions): string[] {
  const home = process.env['HOME'] ?? '/home/agent';
  return [
    // Chromium's own sandbox needs user namespaces or a setuid helper, and the container allows
    // neither (non-root, no-new-privileges, all capabilities dropped): the container is the sandbox.
    '--no-sandbox',
    // Without it Chromium shows a "--no-sandbox is unsupported" warning bar across the very page
    // the user is asked to log in to (chromedriver passes the same flag for the same reason).
    '--test-type',
    `--user-data-dir=${join(home, '.config', 'grexal-chromium')}`,
    // DevTools on fds 3 and 4 only, no TCP port: the network namespace is shared with the agent.
    '--remote-debugging-pipe',
    // No calls home, no updates, no sync, no first-run prompts (chromium-quiet.ts).
    ...quietChromiumFlags(LEAN_FEATURES),
    ...['--noerrdialogs', '--disable-session-crashed-bubble', '--hide-crash-restore-bubble'],
    // No GPU in the X server: draw in software, in the browser process (a GPU process of its own
    // costs ~20 MiB for nothing here).
    ...['--disable-gpu', '--in-process-gpu'],
    ...['--window-position=0,0', `--window-size=${width},${height}`, '--start-maximized'],
    'about:blank',
  ];
}
