/**
 * Prometheus metrics for `GET /metrics`, in a registry of their own (not prom-client's global one),
 * so that several APIs in one process, as in tests, never collide.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { PoolStatus } from '../pool/index.ts';
import type { SandboxState } from '../sandbox/index.ts';
import type { RecordObserver } from './sandbox-record.ts';

export interface ApiMetrics extends Required<RecordObserver> {
  readonly registry: Registry;
  apiError(code: string): void;
  /** A sandbox request answered from a pool (warm) or by a cold create, and how long that took. */
  claimed(warm: boolean, seconds: number): void;
  refillFailed(pool: string, code: string): void;
  /** A takeover page's first frame, from its navigation start, as the page reports it. */
  viewerFirstFrame(seconds: number): void;
}

const STATES: SandboxState[] = [
  'starting',
  'running',
  'awaiting_takeover',
  'awaiting_credentials',
  'exited',
  'failed',
];

export function createMetrics(
  countByState: () => Record<SandboxState, number>,
  pools: () => PoolStatus[] = () => [],
): ApiMetrics {
  const registry = new Registry();
  const poolGauge = (name: string, help: string, value: (pool: PoolStatus) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['pool'],
      registers: [registry],
      collect() {
        this.reset();
        for (const pool of pools()) this.set({ pool: pool.name }, value(pool));
      },
    });
  poolGauge('grexal_pool_size', 'Entries each pool is asked to keep.', (pool) => pool.size);
  poolGauge('grexal_pool_ready', 'Entries started and claimable, by pool.', (pool) => pool.ready);
  poolGauge('grexal_pool_starting', 'Entries being started, by pool.', (pool) => pool.starting);
  poolGauge(
    'grexal_pool_stale',
    'Entries of a changed image awaiting retirement, by pool.',
    (pool) => pool.stale,
  );
  const claims = new Counter({
    name: 'grexal_pool_claims_total',
    help: 'Sandbox requests served from a pool (warm="true") or by a cold create (warm="false").',
    labelNames: ['warm'],
    registers: [registry],
  });
  const claimSeconds = new Histogram({
    name: 'grexal_pool_claim_seconds',
    help: 'From POST /v1/sandboxes to its sandbox bound (a pool entry claimed, or a cold one prepared).',
    labelNames: ['warm'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  const refillFailures = new Counter({
    name: 'grexal_pool_refill_failures_total',
    help: 'Pool entries that failed to start or died while idle, by pool and code.',
    labelNames: ['pool', 'code'],
    registers: [registry],
  });
  collectDefaultMetrics({ register: registry, prefix: 'grexal_' });
  new Gauge({
    name: 'grexal_sandboxes',
    help: 'Sandboxes this runner knows, by state (ended ones while their history is kept).',
    labelNames: ['state'],
    registers: [registry],
    collect() {
      const counts = countByState();
      for (const state of STATES) this.set({ state }, counts[state]);
    },
  });
  const startSeconds = new Histogram({
    name: 'grexal_sandbox_start_seconds',
    help: 'From POST /v1/sandboxes to the sandbox running.',
    buckets: [0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  });
  const takeovers = new Counter({
    name: 'grexal_takeovers_total',
    help: 'Takeovers that ended, by outcome (completed, cancelled, expired).',
    labelNames: ['outcome'],
    registers: [registry],
  });
  const connects = new Counter({
    name: 'grexal_ctx_connect_total',
    help: 'Successful ctx.connect() calls, by connection mode.',
    labelNames: ['mode'],
    registers: [registry],
  });
  const connectSeconds = new Histogram({
    name: 'grexal_ctx_connect_seconds',
    help: 'Time to answer ctx.connect() (OAuth refreshes included), when the audit event carries it.',
    labelNames: ['mode'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [registry],
  });
  const connections = new Counter({
    name: 'grexal_network_connections_total',
    help: "Sandboxes' outbound TCP connections, by decision (allowed, denied).",
    labelNames: ['decision'],
    registers: [registry],
  });
  const firstFrameSeconds = new Histogram({
    name: 'grexal_takeover_first_frame_seconds',
    help: "A takeover page's navigation start to its first frame drawn, as each viewer's page reports it (once per viewer).",
    buckets: [0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1, 2, 5],
    registers: [registry],
  });
  const errors = new Counter({
    name: 'grexal_errors_total',
    help: 'Errors by code: answered by the API (source=api) or ending a sandbox (source=sandbox).',
    labelNames: ['code', 'source'],
    registers: [registry],
  });
  return {
    registry,
    running: (seconds) => startSeconds.observe(seconds),
    takeoverEnded: (outcome) => takeovers.inc({ outcome }),
    connect: (mode, durationMs) => {
      connects.inc({ mode });
      if (durationMs !== undefined) connectSeconds.observe({ mode }, durationMs / 1000);
    },
    network: (decision) => connections.inc({ decision }),
    sandboxError: (code) => errors.inc({ code, source: 'sandbox' }),
    apiError: (code) => errors.inc({ code, source: 'api' }),
    claimed: (warm, seconds) => {
      claims.inc({ warm: String(warm) });
      claimSeconds.observe({ warm: String(warm) }, seconds);
    },
    refillFailed: (pool, code) => refillFailures.inc({ pool, code }),
    viewerFirstFrame: (seconds) => firstFrameSeconds.observe(seconds),
  };
}
