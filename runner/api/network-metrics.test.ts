/** Network audit events reach /metrics: connections by decision, refused names not counted as connections. */
import { describe, expect, it } from 'vitest';
import type { Sandbox, SandboxEvent } from '../sandbox/index.ts';
import { createMetrics } from './metrics.ts';
import { SandboxRecord } from './sandbox-record.ts';

function fakeSandbox(): { sandbox: Sandbox; emit: (event: SandboxEvent) => void } {
  let listener: ((event: SandboxEvent & { at: number }) => void) | undefined;
  const sandbox = {
    id: 'sbx_1',
    options: { image: 'grexal/agent' },
    networkPolicy: { mode: 'public' },
    exited: new Promise(() => {}),
    onEvent: (l: typeof listener) => {
      listener = l;
      return () => {};
    },
  } as unknown as Sandbox;
  return { sandbox, emit: (event) => listener?.({ ...event, at: Date.now() }) };
}

const connection = (decision: 'allowed' | 'denied', kind: 'tcp' | 'dns' = 'tcp'): SandboxEvent => ({
  type: 'network',
  kind,
  port: 443,
  decision,
  rule: decision === 'allowed' ? 'public' : 'denied-range 10.0.0.0/8',
  bytesUp: 0,
  bytesDown: 0,
  durationMs: 0,
});

describe('network metrics', () => {
  it('counts connections by decision and shows the policy', async () => {
    const metrics = createMetrics(() => ({
      starting: 0,
      running: 0,
      awaiting_takeover: 0,
      exited: 0,
      failed: 0,
    }));
    const { sandbox, emit } = fakeSandbox();
    const record = new SandboxRecord(sandbox, {}, metrics);
    emit(connection('allowed'));
    emit(connection('allowed'));
    emit(connection('denied'));
    emit(connection('denied', 'dns'));
    const text = await metrics.registry.metrics();
    expect(text).toContain('grexal_network_connections_total{decision="allowed"} 2');
    expect(text).toContain('grexal_network_connections_total{decision="denied"} 1');
    expect(record.view().network).toEqual({ mode: 'public' });
  });
});
