/**
 * The desktop helper's side of a takeover's `until` (runner/takeover/until-watch.ts is the
 * runner's): a Unix socket, browser.sock beside vnc.sock, where the runner sends
 * `{"until":{"url"?,"cookie"?}}` on one line and gets `{"met":"url"|"cookie"}` once the sandbox's
 * Chromium shows a page whose URL matches the glob or holds a cookie of that name. Pages' URLs come
 * from DevTools' /json/list; cookies over CDP (playwright-core, loaded only for a cookie watch).
 * Polls every POLL_MS until the runner closes the connection.
 */
import { request } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { type Until, untilProblem, urlGlobMatcher } from './until.ts';

const POLL_MS = 200;
const MAX_LINE = 8192;

export interface BrowserWatch {
  close(): Promise<void>;
}

export async function startBrowserWatch(socketPath: string, cdpPort: number): Promise<BrowserWatch> {
  const server: Server = createServer((socket) => serve(socket, cdpPort));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  return { close: () => new Promise((resolve) => server.close(() => resolve())) };
}

function serve(socket: Socket, cdpPort: number): void {
  let text = '';
  let closed = false;
  socket.setEncoding('utf8');
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
  });
  const onData = (chunk: string): void => {
    text += chunk;
    if (text.length > MAX_LINE) return void socket.destroy();
    const end = text.indexOf('\n');
    if (end < 0) return;
    socket.off('data', onData);
    let until: Until;
    try {
      until = (JSON.parse(text.slice(0, end)) as { until: Until }).until;
    } catch {
      return void socket.destroy();
    }
    if (!until || typeof until !== 'object' || untilProblem(until)) return void socket.destroy();
    void watch(until, cdpPort, () => closed).then((met) => {
      if (met && !closed) socket.end(`${JSON.stringify({ met })}\n`);
    });
  };
  socket.on('data', onData);
}

async function watch(
  until: Until,
  cdpPort: number,
  stopped: () => boolean,
): Promise<'url' | 'cookie' | undefined> {
  const matches = until.url ? urlGlobMatcher(until.url) : undefined;
  const cookies = until.cookie ? await cookieReader(cdpPort) : undefined;
  try {
    while (!stopped()) {
      if (matches && (await pageUrls(cdpPort)).some(matches)) return 'url';
      if (cookies && (await cookies.names()).includes(until.cookie!)) return 'cookie';
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
    return undefined;
  } finally {
    await cookies?.close();
  }
}

/** The URL of every page (tab) of the browser. */
function pageUrls(port: number): Promise<string[]> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/json/list', timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => {
        try {
          const targets = JSON.parse(body) as { type?: string; url?: string }[];
          resolve(targets.filter((t) => t.type === 'page' && typeof t.url === 'string').map((t) => t.url!));
        } catch {
          resolve([]);
        }
      });
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve([]));
    req.end();
  });
}

interface CookieReader {
  names(): Promise<string[]>;
  close(): Promise<void>;
}

async function cookieReader(port: number): Promise<CookieReader> {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
  return {
    async names() {
      const cookies = await Promise.all(browser.contexts().map((c) => c.cookies().catch(() => [])));
      return cookies.flat().map((c) => c.name);
    },
    // Disconnects this client only: the browser stays up for the agent.
    close: () => browser.close().catch(() => {}),
  };
}
