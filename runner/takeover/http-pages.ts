/**
 * The takeover's page routes (http.ts): the page, its bundled assets, the viewer's status, its
 * timing report, and Done/Cancel. The stream's upgrade is http-stream.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GrexalError, toGrexalError } from '../errors.ts';
import { AssetStore } from './assets.ts';
import type { TakeoverHttpOptions } from './http.ts';
import { createTimingRoute, TIMING_LOG_LINE, TIMING_ROUTE } from './http-timing.ts';
import {
  BASE_HEADERS,
  checkOrigin,
  contentSecurityPolicy,
  type LogRequest,
  readSmallBody,
  sendError,
  sendJson,
  tokenFromBody,
} from './http-util.ts';
import { VIEWER_ROUTE, viewerStatus } from './http-viewer.ts';
import { BOOT_SCRIPT_HASH } from './page/boot.ts';
import { type AssetVersions, renderMessagePage, renderPage } from './page/render.ts';

const ID = '([A-Za-z0-9_-]{1,64})';
const PAGE = new RegExp(`^/takeover/${ID}$`);
const ASSET = /^\/takeover\/assets\/([A-Za-z0-9._-]{1,64})$/;
const ACTION = new RegExp(`^/v1/takeovers/${ID}/(complete|cancel)$`);

/** `handleRequest` of TakeoverHandlers: answers and returns true for a page route, else false. */
export function createPageRoutes(
  options: TakeoverHttpOptions,
  logged: LogRequest,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  const { broker, log } = options;
  const allowedOrigins = options.allowedOrigins ?? [];
  const assets = new AssetStore(options.assetsDir);
  const ahead = options.firstFrameAhead ?? true;
  const timing = createTimingRoute(broker, (report) => {
    log?.info(report, TIMING_LOG_LINE);
    options.onViewerTiming?.(report);
  });

  async function page(req: IncomingMessage, res: ServerResponse, url: URL, id: string): Promise<void> {
    const headers = {
      ...BASE_HEADERS,
      'Content-Security-Policy': contentSecurityPolicy(
        req.headers.host,
        ahead ? BOOT_SCRIPT_HASH : undefined,
      ),
    };
    let status = 200;
    let html: string;
    try {
      const { info } = broker.authorize(id, url.searchParams.get('token'));
      html = renderPage(
        { id: info.id, reason: info.reason, expiresAt: info.expiresAt, ...labelOf(info) },
        await assetVersions(),
        { boot: ahead },
      );
    } catch (error) {
      const e = toGrexalError(error);
      status = e.status;
      html = renderMessagePage(
        status === 410 ? 'This takeover has ended' : 'This link does not work',
        e.message,
      );
    }
    res.writeHead(status, { ...headers, 'Content-Type': 'text/html; charset=utf-8' });
    res.end(req.method === 'HEAD' ? undefined : html);
    logged(req, url, status);
  }

  /** The bundle's versions for the page's links; none (plain links) while it cannot be read. */
  async function assetVersions(): Promise<AssetVersions> {
    const versions: AssetVersions = {};
    for (const name of ['takeover.js', 'takeover.css'] as const) {
      const found = await assets.get(name)?.catch(() => undefined);
      if (found) versions[name] = found.version;
    }
    return versions;
  }

  async function asset(req: IncomingMessage, res: ServerResponse, url: URL, name: string): Promise<void> {
    const found = await assets.get(name);
    if (!found) return sendError(res, new GrexalError('E_ROUTE_NOT_FOUND', `No takeover asset ${name}.`));
    const headers = {
      ...BASE_HEADERS,
      // A link naming this build's version may be kept; any other (an old page, no version) revalidates.
      'Cache-Control':
        url.searchParams.get('v') === found.version ? 'private, max-age=31536000, immutable' : 'no-cache',
      ETag: found.etag,
      'Content-Type': found.contentType,
    };
    if (req.headers['if-none-match'] === found.etag) {
      res.writeHead(304, headers);
      res.end();
    } else {
      res.writeHead(200, { ...headers, 'Content-Length': found.body.length });
      res.end(req.method === 'HEAD' ? undefined : found.body);
    }
    logged(req, url, res.statusCode);
  }

  async function action(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    id: string,
    verb: string,
  ): Promise<void> {
    checkOrigin(req, allowedOrigins);
    const token = url.searchParams.get('token') ?? tokenFromBody(await readSmallBody(req));
    const info = verb === 'complete' ? broker.complete(id, token) : broker.cancel(id, token);
    sendJson(res, 200, JSON.stringify({ takeover: info }));
    logged(req, url, 200);
  }

  /** The route's work for this request: undefined when the path is not ours, null for a wrong method. */
  function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> | null | undefined {
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    const asAsset = ASSET.exec(url.pathname);
    if (asAsset) return read ? asset(req, res, url, asAsset[1]!) : null;
    const asPage = PAGE.exec(url.pathname);
    if (asPage) return read ? page(req, res, url, asPage[1]!) : null;
    const asViewer = VIEWER_ROUTE.exec(url.pathname);
    if (asViewer) {
      if (!read) return null;
      return (async () => {
        viewerStatus(broker, res, url, asViewer[1]!);
        logged(req, url, 200);
      })();
    }
    const asTiming = TIMING_ROUTE.exec(url.pathname);
    if (asTiming) {
      if (method !== 'POST') return null;
      return (async () => {
        checkOrigin(req, allowedOrigins);
        timing(res, url, asTiming[1]!, await readSmallBody(req, 1024));
        logged(req, url, 204);
      })();
    }
    const asAction = ACTION.exec(url.pathname);
    if (asAction) return method === 'POST' ? action(req, res, url, asAction[1]!, asAction[2]!) : null;
    return undefined;
  }

  function handleRequest(req: IncomingMessage, res: ServerResponse): boolean {
    const url = new URL(req.url ?? '/', 'http://takeover.invalid');
    const work = route(req, res, url);
    if (work === undefined) return false;
    if (work === null) {
      sendError(
        res,
        new GrexalError('E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${url.pathname}.`),
      );
      return true;
    }
    work.catch((error: unknown) => {
      const e = toGrexalError(error);
      if (e.status >= 500) log?.error({ err: e, path: url.pathname }, 'takeover request failed');
      if (!res.headersSent) sendError(res, e);
      else res.destroy();
      logged(req, url, e.status);
    });
    return true;
  }

  return handleRequest;
}

function labelOf(info: { label?: string }): { label?: string } {
  return info.label === undefined ? {} : { label: info.label };
}
