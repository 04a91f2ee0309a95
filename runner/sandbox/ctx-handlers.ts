/**
 * The methods a sandbox answers on its ctx.sock: the supervisor's bootstrap (held until the run is
 * bound and the sandbox's network, policy and browser are in place), its `started` and
 * `supervisor_resume` and `exited`, and the agent's `connect` and `request_takeover`.
 */

import type { Logger } from 'pino';
import {
  type BootstrapResult,
  bootstrapParamsSchema,
  CDP_RELAY_PORT,
  connectParamsSchema,
  supervisorResumeParamsSchema,
} from '../../sandbox-agent/protocol.ts';
import type { CtxHandlers } from '../inject/index.ts';
import { mark } from '../timings.ts';
import { bootstrapResult } from './bootstrap.ts';
import type { BrowserWiring } from './browser-wiring.ts';
import type { LiveConnections } from './live-connections.ts';
import type { NetworkWiring } from './network-wiring.ts';
import type { ResolvedSandboxOptions } from './options.ts';
import type { SandboxCredentials, SandboxTakeovers } from './ports.ts';
import type { RunGate } from './run-gate.ts';
import type { SandboxParts } from './sandbox-parts.ts';
import { requestTakeover, type TakeoverCallContext } from './takeover-call.ts';

/**
 * What the handlers read of their sandbox. The functions are read when a call comes, not when
 * the handlers are made: a pool entry's run (options, credentials, policy, deadline) arrives at
 * its claim, a desktop's browser once its container is created.
 */
export interface CtxHandlersContext {
  sandboxId: string;
  logger: Logger;
  /** The runner's takeover service; absent where takeovers are not served (library runs). */
  takeovers?: SandboxTakeovers;
  /** The agent's container and a desktop's browser container, once they exist. */
  parts: Pick<SandboxParts, 'container' | 'desktop'>;
  gate: RunGate;
  network: NetworkWiring;
  live: LiveConnections;
  browser: BrowserWiring;
  options(): ResolvedSandboxOptions;
  credentials(): SandboxCredentials | undefined;
  /** Epoch ms when the run's time is up, if it is fixed yet. */
  deadlineAt(): number | undefined;
  /** The claim's network policy being applied. */
  policyApplied(): Promise<unknown>;
  /** Settles once the desktop's browser answers (at once without a desktop). */
  desktopReady(): Promise<unknown>;
  /** The supervisor reports the agent spawned: from then on connections can change. */
  agentStarted(): void;
  /** Settles when the ended agent's container may go (StartsFirst). */
  exitTurn(): Promise<void>;
  /** One takeover at a time: the sandbox shows `awaiting_takeover` while one is open. */
  takeoverOpen: TakeoverCallContext['open'];
}

const codedError = (code: string, message: string) => Object.assign(new Error(message), { code });

/** One set per sandbox: the bootstrap is answered once. */
export function createCtxHandlers(context: CtxHandlersContext): CtxHandlers {
  let bootstrapped = false;
  return {
    bootstrap: async (params, call) => {
      if (bootstrapped) throw codedError('invalid_request', 'The sandbox was already bootstrapped.');
      bootstrapped = true;
      mark('bootstrap asked');
      context.gate.askedForBootstrap();
      // A pool entry waits here, with nothing of a run, until its claim.
      await context.gate.bound;
      await context.network.ready.catch(() => {
        throw codedError('internal', "The sandbox's network could not be wired.");
      });
      await context.policyApplied().catch(() => {
        throw codedError('internal', "The sandbox's network policy could not be applied.");
      });
      await context.desktopReady().catch(() => {
        throw codedError('internal', "The sandbox's browser did not start.");
      });
      const result = bootstrapAnswer(context, bootstrapParamsSchema.parse(params).argv);
      call.claimSupervisor();
      mark('bootstrap answered');
      return result;
    },
    started: async () => {
      mark('agent spawned');
      context.agentStarted();
      return {};
    },
    // The agent has ended; the supervisor holds the container until this answer (agent.py).
    exited: async (_params, call) => {
      if (!call.isSupervisor()) throw codedError('invalid_request', 'exited is for the supervisor.');
      await context.exitTurn();
      return {};
    },
    supervisor_resume: async (params, call) => {
      const parsed = supervisorResumeParamsSchema.safeParse(params);
      if (!parsed.success || !context.live.resumes(parsed.data.token))
        throw codedError('invalid_request', 'supervisor_resume is for the supervisor, with its token.');
      call.claimSupervisor();
      return {};
    },
    connect: async (params, call) => {
      const parsed = connectParamsSchema.safeParse(params);
      if (!parsed.success) throw codedError('invalid_request', 'connect needs { connectionId }.');
      const credentials = context.credentials();
      if (!credentials)
        throw codedError('not_declared', `Connection '${parsed.data.connectionId}' is not declared.`);
      return credentials.connect(parsed.data.connectionId, {
        signal: call.signal,
        wait: parsed.data.wait,
      });
    },
    request_takeover: (params, call) => requestTakeover(takeoverContext(context), params, call.signal),
  };
}

function bootstrapAnswer(context: CtxHandlersContext, argv: string[]): BootstrapResult {
  const options = context.options();
  const result = bootstrapResult({
    sandboxId: context.sandboxId,
    options,
    credentials: context.credentials(),
    argv,
    deadlineAt: context.deadlineAt() ?? Date.now() + options.timeoutMs,
    supervisorToken: context.live.supervisorToken,
  });
  // A desktop sandbox's relay is DesktopBrowser's: the supervisor forwards GREXAL_CDP_URL to it.
  const cdpRelay = options.desktop
    ? { cdpRelay: { port: CDP_RELAY_PORT } }
    : context.browser.bootstrapFields();
  return { ...result, ...cdpRelay };
}

/** Made for each request: the desktop's browser container comes up after the handlers are made. */
function takeoverContext(context: CtxHandlersContext): TakeoverCallContext {
  const { desktop, container } = context.parts;
  const { takeovers } = context;
  return {
    sandboxId: context.sandboxId,
    logger: context.logger,
    takeovers,
    streamed:
      takeovers && context.options().desktop && desktop && container ? { desktop, container } : undefined,
    browser: context.browser,
    connectionLabel: (connectionId) => context.credentials()?.connectionLabel(connectionId),
    open: context.takeoverOpen,
  };
}
