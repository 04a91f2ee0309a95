/**
 * OAuth refresh against the real engine: a near-expiry token refreshed once for 50 concurrent
 * connects, and a failed refresh marking the connection broken without a retry. Setup:
 * test/credentials-fixture.ts.
 */
import { describe, expect, it } from 'vitest';
import { Runner, type Sandbox, type SandboxEvent } from '../runner/index.ts';
import type { CredentialProvider, RefreshedToken } from '../runner/inject/index.ts';
import {
  CANARY,
  canary,
  credentialsFor,
  fromHex,
  manifest,
  stateDir,
  useCredentialsFixture,
} from './credentials-fixture.ts';

useCredentialsFixture();

describe('OAuth refresh', () => {
  class CountingProvider implements CredentialProvider {
    readonly canRefresh = true;
    calls = 0;
    constructor(private readonly answer: () => Promise<RefreshedToken>) {}
    async refresh(): Promise<RefreshedToken> {
      this.calls++;
      return this.answer();
    }
  }

  const CONCURRENT_CONNECTS = `
    import { ctx } from '/opt/grexal/ctx.mjs';
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => ctx.connect('gmail')));
    const tokens = new Set(results.map((r) => r.status === 'fulfilled' ? r.value.access_token : 'error:' + r.reason.code));
    console.log(JSON.stringify([...tokens].map((t) => Buffer.from(t).toString('hex'))));
  `;

  async function runWith(provider: CountingProvider, options: Record<string, unknown> = {}) {
    const oauthRunner = await Runner.start({ stateDir, credentialProvider: provider });
    try {
      const sandbox: Sandbox = await oauthRunner.create({
        image: 'grexal/agent',
        command: ['node', '--input-type=module', '-e', CONCURRENT_CONNECTS],
        manifest,
        // Expires in 10 s: inside the 60 s refresh window.
        credentials: credentialsFor(CANARY, Date.now() + 10_000),
        ...options,
      });
      const events: SandboxEvent[] = [];
      let stdout = '';
      sandbox.onEvent((e) => {
        events.push(e);
        if (e.type === 'log' && e.stream === 'stdout') stdout += e.text;
      });
      await sandbox.start();
      await sandbox.exited;
      const tokens = (JSON.parse(stdout.trim()) as string[]).map(fromHex);
      return { tokens, events };
    } finally {
      await oauthRunner.close();
    }
  }

  it('refreshes a near-expiry token once for 50 concurrent connects', async () => {
    const fresh = canary('refreshed');
    const provider = new CountingProvider(async () => {
      await new Promise((resolve) => setTimeout(resolve, 200));
      return { access_token: fresh, expires_at: Date.now() + 3_600_000 };
    });
    const { tokens } = await runWith(provider);
    expect(provider.calls).toBe(1);
    expect(tokens).toEqual([fresh]);
  });

  it('marks the connection broken after a failed refresh, without retrying', async () => {
    const provider = new CountingProvider(async () => {
      throw new Error('the orchestrator said no');
    });
    // No wait for a new credential (test/live-connections.test.ts covers that): broken at once.
    const { tokens, events } = await runWith(provider, { reconnectTimeoutMs: 0 });
    expect(provider.calls).toBe(1);
    expect(tokens).toEqual(['error:broken']);
    expect(events.filter((e) => e.type === 'connection.broken')).toHaveLength(1);
  });
});
