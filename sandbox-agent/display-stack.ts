/**
 * The display stack of a desktop sandbox: an X server whose screen is served over RFB on a Unix
 * socket. One process, Xtigervnc (TigerVNC 1.12): it is both the X server and the VNC server, so
 * updates come from the server's own damage tracking (no polling, no copy of the framebuffer),
 * with ContinuousUpdates, Fence, the extended (UTF-8) clipboard and ExtendedDesktopSize, which
 * Xvfb + x11vnc lacked (bench/takeover and bench/input measured the two side by side).
 *
 * Kept behind `startDisplay` so the rest of the desktop (window manager, browser) only sees an X
 * display and a socket: moving the browser elsewhere, or the stack, changes this file alone.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import {
  DesktopProcess,
  displayNumber,
  socketAnswers,
  type WaitOptions,
  waitFor,
} from './desktop-process.ts';

export interface DisplayOptions {
  width: number;
  height: number;
  /** Where the RFB socket is created (it must not exist). */
  vncSocket: string;
}

export interface Display {
  /** `:N`, accepting X clients. */
  display: string;
}

const X11_UNIX_DIR = '/tmp/.X11-unix';
const VNC_GREETING = /^RFB \d{3}\.\d{3}\n$/;

/**
 * Starts Xtigervnc and resolves once both the X display and the RFB socket answer. Processes go
 * into `watch` as they start, so a caller's `stop` reaches them even if this throws.
 */
export async function startDisplay(options: DisplayOptions, wait: WaitOptions): Promise<Display> {
  // With no abstract socket (-nolisten local) X clients need the filesystem one, and a non-root X
  // server does not create its directory: it is made here, in this container's own /tmp.
  mkdirSync(X11_UNIX_DIR, { recursive: true, mode: 0o1777 });
  chmodSync(X11_UNIX_DIR, 0o1777);
  const server = new DesktopProcess('Xtigervnc', 'Xtigervnc', xtigervncArgs(options), process.env, 1);
  wait.watch.push(server);
  const display = `:${await displayNumber(server, wait)}`;
  await waitFor('the X display', () => socketAnswers(`/tmp/.X11-unix/X${display.slice(1)}`), wait);
  await waitFor('the VNC server on vnc.sock', () => socketAnswers(options.vncSocket, VNC_GREETING), wait);
  return { display };
}

export function xtigervncArgs({ width, height, vncSocket }: DisplayOptions): string[] {
  return [
    // -displayfd: the server picks a free display and writes its number on fd 3 once it accepts clients.
    ...['-displayfd', '3', '-geometry', `${width}x${height}`, '-depth', '24', '-dpi', '96'],
    // No X over TCP, and no RFB over TCP at all (1.12 opens a TCP port unless -rfbport is -1):
    // only the Unix socket, reached from the host by the runner's bridge, which checks the token.
    // No abstract X socket either (`local`): abstract sockets belong to the network namespace, and
    // the browser container shares the agent's; X clients use /tmp/.X11-unix, this container's own.
    ...['-nolisten', 'tcp', '-nolisten', 'local'],
    ...['-rfbport', '-1', '-rfbunixpath', vncSocket, '-rfbunixmode', '0600'],
    // No VNC authentication: nothing but the runner can reach the socket.
    ...['-SecurityTypes', 'None'],
    // Every viewer has its own connection (the bridge gives each one); none may kick the others.
    ...['-AlwaysShared=1', '-NeverShared=0', '-DisconnectClients=0'],
    // Paste goes into the sandbox (CLIPBOARD and PRIMARY); the sandbox's clipboard is never sent out.
    ...['-AcceptCutText=1', '-SetPrimary=1', '-SendCutText=0', '-SendPrimary=0'],
    // The controlling viewer's window sizes the screen (the bridge drops a view-only viewer's request).
    ...['-AcceptSetDesktopSize=1', '-MaxCutText', String(1024 * 1024)],
    // Keep the server (and the session) across the last X client; log warnings and errors only.
    ...['-noreset', '-Log', '*:stderr:30'],
    ...['-desktop', 'grexal'],
  ];
}
