/**
 * The HTTP half of Chromium's DevTools endpoint (`/json/*`), answered from the relay's root session
 * so that Playwright's `connectOverCDP(http://…)`, Puppeteer's `browserURL` and scripts that list
 * tabs work unchanged. Every URL it hands out names the address the request's Host header names
 * (the in-sandbox one, 127.0.0.1:9222), never the relay's socket.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CdpMux } from './mux.ts';
import type { TargetInfo } from './targets.ts';

export interface BrowserVersion {
  product: string;
  protocolVersion: string;
  userAgent: string;
  jsVersion: string;
  revision: string;
}

/**
 * Chromium refuses a Host that is not an IP literal or localhost (DNS rebinding: a web page that
 * names its own host at the loopback port); so does the relay.
 */
const HOST_PATTERN = /^(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\])(:\d{1,5})?$/;

export function hostOf(request: IncomingMessage): string | undefined {
  const host = request.headers.host;
  return host !== undefined && host.length <= 64 && HOST_PATTERN.test(host) ? host : undefined;
}

export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body, null, 3)}\n`;
  response.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
  });
  response.end(text);
}

function sendText(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=UTF-8' });
  response.end(text);
}

function describeTarget(target: TargetInfo, host: string): Record<string, string> {
  const path = `${host}/devtools/page/${target.targetId}`;
  return {
    description: '',
    devtoolsFrontendUrl: `/devtools/inspector.html?ws=${path}`,
    id: target.targetId,
    title: target.title,
    type: target.type,
    url: target.url,
    webSocketDebuggerUrl: `ws://${path}`,
  };
}

export interface DevtoolsHttpContext {
  mux: CdpMux;
  version: BrowserVersion;
  browserId: string;
}

/** Answers one `/json…` request; false when the path is none of Chromium's. */
export async function answerDevtoolsHttp(
  context: DevtoolsHttpContext,
  request: IncomingMessage,
  response: ServerResponse,
  host: string,
): Promise<boolean> {
  const raw = request.url ?? '/';
  const query = raw.indexOf('?');
  const path = (query === -1 ? raw : raw.slice(0, query)).replace(/\/+$/, '') || '/';
  const search = query === -1 ? '' : raw.slice(query + 1);
  const { mux, version } = context;
  if (path === '/json/version') {
    sendJson(response, 200, {
      Browser: version.product,
      'Protocol-Version': version.protocolVersion,
      'User-Agent': version.userAgent,
      'V8-Version': version.jsVersion,
      'WebKit-Version': version.revision,
      webSocketDebuggerUrl: `ws://${host}/devtools/browser/${context.browserId}`,
    });
  } else if (path === '/json' || path === '/json/list') {
    // Not while a hidden target is being made: it is in the registry before it is hidden.
    await mux.settled();
    sendJson(
      response,
      200,
      mux.targets.listed().map((target) => describeTarget(target, host)),
    );
  } else if (path === '/json/new') {
    if (request.method !== 'PUT' && request.method !== 'GET') {
      sendText(response, 405, 'Using unsafe HTTP verb to open a new page. Use PUT.');
      return true;
    }
    const url = search === '' ? 'about:blank' : safeDecode(search);
    const { targetId } = await mux.rootCall('Target.createTarget', { url });
    const id = String(targetId);
    const target = mux.targets.get(id) ?? { targetId: id, type: 'page', title: '', url };
    sendJson(response, 200, describeTarget(target, host));
  } else if (path.startsWith('/json/activate/') || path.startsWith('/json/close/')) {
    const id = safeDecode(path.slice(path.lastIndexOf('/') + 1));
    await mux.settled();
    if (!mux.targets.get(id)) {
      sendText(response, 404, `No such target id: ${id}`);
      return true;
    }
    const activate = path.startsWith('/json/activate/');
    await mux.rootCall(activate ? 'Target.activateTarget' : 'Target.closeTarget', { targetId: id });
    sendText(response, 200, activate ? 'Target activated' : 'Target is closing');
  } else {
    return false;
  }
  return true;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
