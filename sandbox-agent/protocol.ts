/**
 * The wire protocol between the runner and a sandbox, over `/run/grexal/ctx.sock`.
 *
 * Newline-delimited JSON. A client sends `{ id, method, params }`; the runner answers
 * `{ id, result }` or `{ id, error: { code, message } }`. One connection may carry many
 * requests at once; answers may come out of order and are matched by `id`.
 *
 * This file is the only thing the runner and the sandbox share: `runner/` imports it,
 * `sandbox-agent/` never imports `runner/`. It runs inside the sandbox on the image's Node (the host's, 20 or later).
 */
import { z } from 'zod';
import { untilProblem } from './until.ts';
import { CONNECTION_ID_PATTERN, TAKEOVER_MAX_TIMEOUT_MS, TAKEOVER_MIN_TIMEOUT_MS } from './wire.ts';

// The zod-free half of the protocol (paths, codes, framing) lives in wire.ts, so that code inside
// the sandbox can use it without loading zod: that keeps ~130 ms off every sandbox start.
export * from './wire.ts';

// Every schema here is built at its first use (z.lazy), not when this module loads: `grexal run`
// loads the runner whole at its start but speaks this protocol only once the container runs, and
// building them all was ~1.5 ms of its ~38 ms bundle load.

export const connectionIdSchema = z.lazy(() => z.string().regex(CONNECTION_ID_PATTERN));

const requestIdSchema = z.lazy(() => z.union([z.number().int(), z.string().max(64)]));

export const requestSchema = z.lazy(() =>
  z.object({ id: requestIdSchema, method: z.string().max(64), params: z.unknown().optional() }),
);
export type Request = z.infer<typeof requestSchema>;

export const errorSchema = z.lazy(() => z.object({ code: z.string(), message: z.string() }));

export const responseSchema = z.lazy(() =>
  z.union([
    z.object({ id: requestIdSchema, result: z.unknown() }),
    z.object({ id: requestIdSchema, error: errorSchema }),
  ]),
);
export type Response = z.infer<typeof responseSchema>;

// --- bootstrap: the supervisor's first and only call ---------------------------------------

export const desktopSchema = z.lazy(() =>
  z.object({
    width: z.number().int().min(320).max(3840),
    height: z.number().int().min(240).max(2160),
  }),
);
export type DesktopOptions = z.infer<typeof desktopSchema>;

/** The supervisor sends its own argv: the image's CMD, the default command when the runner has none. */
export const bootstrapParamsSchema = z.lazy(() => z.object({ argv: z.array(z.string()).max(1024) }));

export const bootstrapResultSchema = z.lazy(() =>
  z.object({
    /** argv of the agent; `command[0]` is looked up on PATH. */
    command: z.array(z.string()).min(1),
    /** The agent's whole environment: base variables plus the injected credentials. */
    env: z.record(z.string(), z.string()),
    cwd: z.string().optional(),
    /** A tar (base64) of `<connection_id>/<name>` entries for the file channel; absent when none. */
    filesTar: z.string().optional(),
    /** How long the agent gets between SIGTERM and SIGKILL. */
    stopTimeoutMs: z.number().int().positive(),
    /** Present for desktop sandboxes: the display to start before the agent. */
    desktop: desktopSchema.optional(),
    /**
     * Milliseconds from this answer to the run's deadline. The supervisor stops the agent then by
     * itself (as for a runner's stop), so a sandbox ends on time even when its runner is gone.
     * Absent (older runners): no deadline inside the sandbox.
     */
    deadlineMs: z.number().int().nonnegative().optional(),
    /**
     * Present: the supervisor keeps its connection open after `started`, and stops the agent once
     * that connection is gone and no new one could be made for this many milliseconds.
     */
    runnerGraceMs: z.number().int().positive().optional(),
    /** Present when the runner pushes file-channel changes: the supervisor's proof in `supervisor_resume`. */
    supervisorToken: z.string().optional(),
    /**
     * Present when the sandbox's browser is behind the runner's CDP relay (`/run/grexal/cdp.sock`):
     * the supervisor listens on 127.0.0.1:`port` before the agent starts, forwards each connection
     * to the relay byte for byte, and gives the agent `GREXAL_CDP_URL=http://127.0.0.1:<port>`.
     * Absent (older runners, sandboxes without a relayed browser): nothing listens.
     */
    cdpRelay: z.object({ port: z.number().int().min(1).max(65535) }).optional(),
  }),
);
export type BootstrapResult = z.infer<typeof bootstrapResultSchema>;

/** The supervisor takes its place back after a reconnect, with the token its bootstrap carried. */
export const supervisorResumeParamsSchema = z.lazy(() => z.object({ token: z.string().min(1).max(128) }));

// --- runner to supervisor: live file-channel changes -----------------------------------------

/** Replace one connection's files: a tar (base64) of `<connection_id>/<name>` entries, as in bootstrap. */
export const filesReplaceParamsSchema = z.lazy(() =>
  z.object({ connectionId: connectionIdSchema, filesTar: z.string() }),
);
/** Remove one connection's directory and its files. */
export const filesRemoveParamsSchema = z.lazy(() => z.object({ connectionId: connectionIdSchema }));

/** The supervisor reports that the agent process runs (or could not be spawned). */
export const startedParamsSchema = z.lazy(() =>
  z.object({
    pid: z.number().int().optional(),
    error: z.string().optional(),
  }),
);
export type StartedParams = z.infer<typeof startedParamsSchema>;

// --- connect ---------------------------------------------------------------------------------

export const connectParamsSchema = z.lazy(() =>
  z.object({
    connectionId: z.string().max(128),
    /** Default true: a broken connection waits (up to its reconnectTimeoutMs) for a new credential. */
    wait: z.boolean().optional(),
  }),
);
export type ConnectParams = z.infer<typeof connectParamsSchema>;

export const connectResultSchema = z.lazy(() =>
  z.discriminatedUnion('mode', [
    z.object({ mode: z.literal('secret_input'), fields: z.record(z.string(), z.string()) }),
    z.object({
      mode: z.literal('oauth_redirect'),
      access_token: z.string(),
      token_type: z.string(),
      expires_at: z.number().nullable(),
      scope: z.string().nullable(),
    }),
    z.object({ mode: z.literal('file_upload'), dir: z.string(), files: z.record(z.string(), z.string()) }),
    z.object({ mode: z.literal('browser_login') }),
  ]),
);
export type ConnectResult = z.infer<typeof connectResultSchema>;

// --- request_takeover ------------------------------------------------------------------------

/** The takeover completes by itself once this holds in the sandbox's browser (sandbox-agent/until.ts). */
export const untilSchema = z.lazy(() =>
  z
    .object({ url: z.string().optional(), cookie: z.string().optional() })
    .strict()
    .superRefine((until, ctx) => {
      const problem = untilProblem(until);
      if (problem)
        ctx.addIssue({ code: 'custom', path: problem.path.split('.').slice(1), message: problem.message });
    }),
);

export const requestTakeoverParamsSchema = z.lazy(() =>
  z.object({
    connectionId: z.string().max(128).optional(),
    reason: z.string().min(1).max(500),
    timeoutMs: z.number().int().min(TAKEOVER_MIN_TIMEOUT_MS).max(TAKEOVER_MAX_TIMEOUT_MS).optional(),
    until: untilSchema.optional(),
  }),
);
export type RequestTakeoverParams = z.infer<typeof requestTakeoverParamsSchema>;

export const requestTakeoverResultSchema = z.lazy(() => z.object({ outcome: z.literal('completed') }));
