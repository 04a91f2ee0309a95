/**
 * Prometheus metrics for `GET /metrics`, in a registry of their own (not prom-client's global one),
 * so that several APIs in one process, as in tests, never collide.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SandboxState } from '../sandbox/index.ts';
import type { RecordObserver } from './sandbox-record.ts';

export interface ApiMetrics extends Required<RecordObserver> {
  readonly registry: Registry;
  apiError(code: string): void;
}

const STATES: SandboxState[] = ['starting', 'running', 'awaiting_takeover', 'exited', 'failed'];

export function createMetrics(countByState: () => Record<SandboxState, number>): ApiMetrics {
  const registry = new Registry();
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
  };
}
