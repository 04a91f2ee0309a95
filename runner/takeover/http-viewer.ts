/**
 * GET /v1/takeovers/:id/viewer?token=…&viewer=<key>: what the page shows about this viewer —
 * whether it has the keyboard and mouse (the bridge enforces it; this only tells), how many are
 * watching, and the expiry. The page polls it every few seconds and shows the round trip as its
 * latency figure. Never cached; the answer holds no token and no path.
 */
import type { ServerResponse } from 'node:http';
import type { TakeoverBroker } from './broker.ts';
import { sendJson } from './http-util.ts';

export const VIEWER_ROUTE = /^\/v1\/takeovers\/([A-Za-z0-9_-]{1,64})\/viewer$/;

export function viewerStatus(broker: TakeoverBroker, res: ServerResponse, url: URL, id: string): void {
  const auth = broker.authorize(id, url.searchParams.get('token'));
  const key = url.searchParams.get('viewer') ?? undefined;
  const { controls, viewers } = auth.viewerStatus(key);
  sendJson(
    res,
    200,
    JSON.stringify({ controls, viewers, state: auth.info.state, expiresAt: auth.info.expiresAt }),
  );
}
