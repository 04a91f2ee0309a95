/**
 * POST /v1/takeovers/:id/timing?token=…&viewer=<key>: the page's own account of how long its
 * first frame took, on its own clock (ms since its navigation began), sent once the page is idle
 * after that frame. It is how an operator learns what users actually wait (the runner's metrics
 * histogram and its log), and how bench/takeover times a browser that no tool is attached to.
 * Counted once per viewer key and takeover, and for at most MAX_VIEWERS keys of a takeover (the
 * keys are the page's own, not checked against the stream's viewers: a token holder could make up
 * more); further reports are answered and dropped. The body is small, validated, and holds nothing
 * of the user's.
 */
import type { ServerResponse } from 'node:http';
import { z } from 'zod';
import { GrexalError } from '../errors.ts';
import { parseOrThrow } from '../validation.ts';
import type { TakeoverBroker } from './broker.ts';
import { BASE_HEADERS } from './http-util.ts';

export const TIMING_ROUTE = /^\/v1\/takeovers\/([A-Za-z0-9_-]{1,64})\/timing$/;

/** At most ten minutes, in ms: a figure beyond that is no first frame worth counting. */
const ms = z.number().finite().min(0).max(600_000);

export const viewerTimingSchema = z.strictObject({
  /** The page's performance.timeOrigin, epoch ms, on the viewer's clock (logged, not trusted). */
  timeOrigin: z.number().finite().positive().max(8.64e15),
  /** Navigation start → noVNC connected (the RFB handshake done). */
  connectMs: ms,
  /** Navigation start → the first frame drawn onto the page's canvas. */
  firstFrameMs: ms,
});
export type ViewerTiming = z.infer<typeof viewerTimingSchema> & { takeoverId: string };

/** The runner's log line for each report counted, with the report's fields and `takeoverId`. */
export const TIMING_LOG_LINE = 'takeover: first frame drawn, as the page reports';

/** Viewers already counted (takeover id + viewer key); bounded, as keys come from the network. */
const MAX_REMEMBERED = 4096;
/** Reports counted per takeover at most: one link's holder cannot fill the histogram. */
export const MAX_VIEWERS = 8;

export function createTimingRoute(broker: TakeoverBroker, onTiming: (timing: ViewerTiming) => void) {
  const counted = new Set<string>();
  const perTakeover = new Map<string, number>();
  return function timing(res: ServerResponse, url: URL, id: string, body: string): void {
    broker.authorize(id, url.searchParams.get('token'));
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new GrexalError(
        'E_VALIDATION',
        'The timing report is not JSON; send {"timeOrigin":…,"connectMs":…,"firstFrameMs":…}.',
      );
    }
    const report = parseOrThrow(viewerTimingSchema, parsed, 'timing report');
    const viewer = `${id}/${url.searchParams.get('viewer') ?? ''}`;
    const already = perTakeover.get(id) ?? 0;
    if (!counted.has(viewer) && already < MAX_VIEWERS) {
      if (counted.size >= MAX_REMEMBERED) {
        counted.clear();
        perTakeover.clear();
      }
      counted.add(viewer);
      perTakeover.set(id, (perTakeover.get(id) ?? 0) + 1);
      onTiming({ ...report, takeoverId: id });
    }
    res.writeHead(204, BASE_HEADERS);
    res.end();
  };
}
