/**
 * Reads a Chromium performance trace of a takeover round (bench/takeover/trace.ts): the takeover
 * page's renderer main thread, its top-level tasks and what each spent its time on, and the
 * loading / WebSocket marks, all in ms from the agent's request (the page's navigationStart mark
 * is the page's performance.timeOrigin, on the bench's epoch clock).
 */
export interface TraceEvent {
  name: string;
  cat: string;
  ph: string;
  ts: number;
  dur?: number;
  pid: number;
  tid: number;
  args?: { data?: Record<string, unknown>; [k: string]: unknown };
}

/** What a task's descendants did that is worth naming, with its detail. */
const WORK = new Set([
  'ParseHTML',
  'EvaluateScript',
  'v8.compile',
  'v8.compileModule',
  'v8.evaluateModule',
  'v8.produceModuleCache',
  'v8.parseOnBackground',
  'FunctionCall',
  'EventDispatch',
  'TimerFire',
  'FireAnimationFrame',
  'Decode Image',
  'ImageDecodeTask',
  'Decode LazyPixelRef',
  'Paint',
  'PrePaint',
  'Layout',
  'UpdateLayoutTree',
  'ParseAuthorStyleSheet',
  'XHRReadyStateChange',
  'MajorGC',
  'MinorGC',
  'V8.GC_SCAVENGER',
  'BlinkGC.AtomicPhase',
  'ResourceReceivedData',
  'CommitLoad',
  'v8.run',
  'V8.DeserializeContext',
]);

const MARKS = new Set([
  'navigationStart',
  'ResourceSendRequest',
  'ResourceReceiveResponse',
  'ResourceFinish',
  'WebSocketCreate',
  'WebSocketSendHandshakeRequest',
  'WebSocketReceiveHandshakeResponse',
  'MarkDOMContent',
  'MarkLoad',
  'firstPaint',
  'firstContentfulPaint',
  'domInteractive',
]);

function detail(e: TraceEvent): string {
  const d = e.args?.data ?? {};
  const bits = [d['url'], d['functionName'], d['type'], d['fileName']]
    .filter((x) => typeof x === 'string' && x)
    .map((x) =>
      String(x)
        .replace(/^.*\/(takeover\/|v1\/)/, '$1')
        .slice(0, 60),
    );
  return bits.length ? `(${bits.join(' ')})` : '';
}

export function summariseTrace(
  events: TraceEvent[],
  link: string,
  timeOrigin: number,
  asked: number,
): string[] {
  const path = new URL(link).pathname;
  const nav = events.find(
    (e) => e.name === 'navigationStart' && String(e.args?.data?.['documentLoaderURL'] ?? '').includes(path),
  );
  if (!nav) return ['no navigationStart for the takeover page in the trace'];
  const { pid, tid } = nav;
  const at = (ts: number) => timeOrigin + (ts - nav.ts) / 1000 - asked;
  const out: string[] = [];
  const marks = events
    .filter((e) => MARKS.has(e.name) && (e.pid === pid || e.name.startsWith('WebSocket')))
    .filter((e) => e.ts >= nav.ts - 50_000)
    .sort((a, b) => a.ts - b.ts);
  for (const e of marks) out.push(`mark @${at(e.ts).toFixed(0).padStart(5)} ${e.name}${detail(e)}`);
  const main = events.filter(
    (e) => e.pid === pid && e.tid === tid && e.ph === 'X' && e.ts >= nav.ts - 50_000,
  );
  const tasks = main
    .filter((e) => e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask')
    .sort((a, b) => a.ts - b.ts);
  let busy = 0;
  let end = 0;
  for (const task of tasks) {
    // RunTask and ThreadControllerImpl::RunTask nest: count the outer one only.
    if (task.ts < end) continue;
    end = task.ts + (task.dur ?? 0);
    const dur = (task.dur ?? 0) / 1000;
    busy += dur;
    if (dur < 1) continue;
    const inside = main
      .filter((e) => WORK.has(e.name) && e.ts >= task.ts && e.ts + (e.dur ?? 0) <= task.ts + (task.dur ?? 0))
      .sort((a, b) => (b.dur ?? 0) - (a.dur ?? 0))
      .slice(0, 5)
      .map((e) => `${e.name}${detail(e)} ${((e.dur ?? 0) / 1000).toFixed(1)}`);
    out.push(
      `task @${at(task.ts).toFixed(0).padStart(5)} ${dur.toFixed(1).padStart(6)} ms: ${inside.join('; ')}`,
    );
  }
  out.push(`main thread busy in tasks: ${busy.toFixed(0)} ms`);
  // Other threads of the renderer: background compile, image decoders, compositor, raster.
  const byThread = new Map<number, number>();
  for (const e of events)
    if (
      e.pid === pid &&
      e.tid !== tid &&
      e.ph === 'X' &&
      (e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask')
    )
      byThread.set(e.tid, (byThread.get(e.tid) ?? 0) + (e.dur ?? 0) / 1000);
  const names = new Map<number, string>();
  for (const e of events)
    if (e.pid === pid && e.ph === 'M' && e.name === 'thread_name') names.set(e.tid, String(e.args?.['name']));
  out.push(
    `renderer's other threads (ms in tasks): ${[...byThread]
      .filter(([, ms]) => ms >= 1)
      .map(([t, ms]) => `${names.get(t) ?? t} ${ms.toFixed(0)}`)
      .join(', ')}`,
  );
  return out;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber?: number };
  parent?: number;
}

/**
 * The renderer main thread's V8 CPU samples (disabled-by-default-v8.cpu_profiler) between two
 * trace timestamps, as self time per function: what the page's script spends its time on.
 */
export function profileSelfTime(
  events: TraceEvent[],
  pid: number,
  fromTs: number,
  toTs: number,
): Array<[string, number]> {
  const nodes = new Map<number, ProfileNode>();
  const self = new Map<string, number>();
  const chunks = events.filter((e) => e.pid === pid && (e.name === 'ProfileChunk' || e.name === 'Profile'));
  let ts = 0;
  for (const e of chunks.sort((a, b) => a.ts - b.ts)) {
    const data = e.args?.data as
      | {
          startTime?: number;
          cpuProfile?: { nodes?: ProfileNode[]; samples?: number[] };
          timeDeltas?: number[];
        }
      | undefined;
    if (e.name === 'Profile') {
      ts = data?.startTime ?? e.ts;
      continue;
    }
    for (const n of data?.cpuProfile?.nodes ?? []) nodes.set(n.id, n);
    const samples = data?.cpuProfile?.samples ?? [];
    const deltas = data?.timeDeltas ?? [];
    for (let i = 0; i < samples.length; i++) {
      const delta = deltas[i] ?? 0;
      ts += delta;
      if (ts < fromTs || ts > toTs) continue;
      const n = nodes.get(samples[i]!);
      if (!n) continue;
      const url = (n.callFrame.url ?? '').replace(/^.*\//, '').replace(/\?.*$/, '');
      const key = `${n.callFrame.functionName || '(anon)'} ${url}:${n.callFrame.lineNumber ?? ''}`;
      self.set(key, (self.get(key) ?? 0) + Math.min(delta, 5000) / 1000);
    }
  }
  return [...self].sort((a, b) => b[1] - a[1]);
}
