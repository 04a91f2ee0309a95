/**
 * The runner's one error hierarchy. Every failure a caller can see carries a stable code from
 * `ERROR_CODES`; docs/errors.md lists the same codes and a unit test keeps the two in step.
 * A retired code is never reused.
 */

export const ERROR_CODES = {
  E_ENGINE_UNREACHABLE: { status: 503, summary: 'No container engine answered.' },
  E_ENGINE_INSTALL_FAILED: { status: 500, summary: 'Installing or starting the Docker engine failed.' },
  E_ENGINE: { status: 502, summary: 'The container engine refused or failed an operation.' },
  E_ENGINE_LOST: {
    status: 503,
    summary: 'The container engine crashed, hung or became unreachable while a sandbox ran.',
  },
  E_ENGINE_STOPPED: {
    status: 503,
    summary: 'The container engine shut down cleanly while a sandbox ran, stopping it.',
  },
  E_SANDBOX_KILLED: {
    status: 500,
    summary:
      'A signal through the engine that neither the runner nor the agent sent ended the sandbox (docker stop or kill).',
  },
  E_IMAGE_NOT_FOUND: { status: 400, summary: 'The sandbox image is not in the engine.' },
  E_IMAGE_BUILD_FAILED: { status: 500, summary: 'Building an image failed.' },
  E_RUNTIME_NOT_FOUND: {
    status: 400,
    summary: 'The requested OCI runtime is not registered with the engine.',
  },
  E_VALIDATION: { status: 400, summary: 'The request is invalid; details lists every problem.' },
  E_MISSING_CREDENTIALS: { status: 400, summary: 'Required connections have no credential.' },
  E_SANDBOX_NOT_FOUND: { status: 404, summary: 'No sandbox with that id belongs to this runner.' },
  E_SANDBOX_START_FAILED: { status: 500, summary: 'The sandbox could not be started.' },
  E_TIMEOUT: { status: 504, summary: 'The operation ran past its deadline.' },
  E_ABORTED: { status: 499, summary: 'The operation was cancelled.' },
  E_INTERNAL: { status: 500, summary: 'An unexpected failure inside the runner.' },
  E_TAKEOVER_NOT_FOUND: { status: 404, summary: 'No takeover with that id exists on this runner.' },
  E_TAKEOVER_ENDED: { status: 410, summary: 'The takeover has ended; its link no longer works.' },
  E_TAKEOVER_TOKEN_MISSING: { status: 401, summary: 'The takeover link has no token.' },
  E_TAKEOVER_TOKEN_INVALID: { status: 403, summary: 'The takeover token is wrong.' },
  E_TAKEOVER_ORIGIN: { status: 403, summary: 'The request came from a page on another origin.' },
  E_DESKTOP_UNAVAILABLE: {
    status: 503,
    summary: "The sandbox's desktop (its VNC socket) cannot be reached.",
  },
  E_ROUTE_NOT_FOUND: { status: 404, summary: 'No such route.' },
  E_METHOD_NOT_ALLOWED: { status: 405, summary: 'The route does not accept that HTTP method.' },
  E_CREDENTIAL_REFRESH_FAILED: {
    status: 502,
    summary: 'The credential provider could not refresh an OAuth token.',
  },
  E_UNAUTHORIZED: { status: 401, summary: 'The request has no valid bearer token.' },
  E_BODY_INVALID_JSON: { status: 400, summary: 'The request body is not valid JSON.' },
  E_BODY_TOO_LARGE: { status: 413, summary: 'The request body is over the size limit.' },
  E_CONTENT_TYPE_UNSUPPORTED: { status: 415, summary: 'The request body is not application/json.' },
  E_BAD_REQUEST: { status: 400, summary: 'The HTTP request is malformed.' },
  E_URL_TOO_LONG: { status: 414, summary: 'The request URL is over the length limit.' },
  E_HEADERS_TOO_LARGE: { status: 431, summary: 'The request line and headers are over the size limit.' },
  E_REQUEST_TIMEOUT: { status: 408, summary: 'The request did not arrive within the server timeout.' },
  E_NOT_READY: {
    status: 503,
    summary: 'The runner cannot start sandboxes now (engine unreachable or images missing).',
  },
  E_TOO_MANY_SANDBOXES: { status: 429, summary: 'The runner is at its cap of concurrent sandboxes.' },
  E_RUNNER_CLOSING: { status: 503, summary: 'The runner is shutting down and accepts no new work.' },
  E_TOKEN_REQUIRED: {
    status: 500,
    summary: 'Serving beyond loopback needs GREXAL_RUNNER_TOKEN.',
  },
  E_LISTEN_FAILED: { status: 500, summary: 'The API could not listen on its host and port.' },
  E_SANDBOX_GONE: {
    status: 410,
    summary: 'This sandbox belonged to an earlier runner instance that has stopped; it is gone.',
  },
  E_SANDBOX_ENDED: {
    status: 409,
    summary: 'The sandbox has ended (or is ending); its connections can no longer change.',
  },
  E_SANDBOX_STARTING: {
    status: 409,
    summary: "The sandbox's agent has not started yet; its connections can change once it runs.",
  },
  E_CREDENTIAL_DELIVERY_FAILED: {
    status: 502,
    summary:
      "The sandbox's supervisor could not replace or remove a connection's files; the old files are intact.",
  },
  E_NETWORK_UNAVAILABLE: {
    status: 503,
    summary: 'This host cannot enforce a network policy (needs root, nftables and iproute2).',
  },
  E_NETWORK_SETUP_FAILED: { status: 500, summary: "Wiring the sandbox's network on the host failed." },
  E_POOL_NOT_FOUND: { status: 404, summary: 'No pool with that name exists on this runner.' },
  E_BROWSER_CUT: {
    status: 503,
    summary:
      "The agent's DevTools access to its browser is cut while the user has the browser (a takeover); it comes back when the takeover ends.",
  },
  E_BROWSER_UNAVAILABLE: { status: 503, summary: "The sandbox's browser has closed or cannot be reached." },
  E_BROWSER_NOT_FOUND: { status: 500, summary: "No Chromium to launch for `grexal dev`'s local browser." },
  E_BROWSER_NO_DISPLAY: { status: 500, summary: "No display for `grexal dev`'s local browser window." },
  E_BROWSER_START_FAILED: {
    status: 500,
    summary: "`grexal dev`'s local Chromium exited or did not answer over DevTools while starting.",
  },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Codes of the problems listed in an `E_VALIDATION`'s details by runner/ itself; runner/inject has
 * its own registry for connections and credentials. docs/errors.md lists both, tests keep them in step.
 */
export const REQUEST_PROBLEM_CODES = {
  E_FIELD_REQUIRED: 'a required field is missing.',
  E_FIELD_TYPE: 'a field has the wrong type.',
  E_FIELD_UNKNOWN: 'a field the schema does not know (refused, not ignored).',
  E_FIELD_INVALID: "a field's value is out of range or malformed.",
  E_LIMIT_INVALID: 'a memory, CPU, process or time limit is not valid.',
  E_CREDENTIAL_PLACEHOLDER:
    "a credential in `grexal dev`'s connections file is still the template's placeholder.",
  E_IMAGE_REFERENCE_INVALID:
    "an image is not a reference by Docker's grammar (`[host[:port]/]name[/name…][:tag][@sha256:<64 hex>]`, lower-case name components, at most 255 characters of name); refused before the engine is asked.",
  E_STRING_UNENCODABLE:
    'a string (anywhere: command, env, manifest, credentials, metadata, or a ctx request) holds a lone UTF-16 surrogate, which has no UTF-8 form; or a command argument or env value holds a NUL.',
  E_POOL_NAME_INVALID: 'a pool name is not 1-63 of a-z, 0-9, _ and -, starting with a letter or digit.',
  E_POOL_SIZE_INVALID: 'a pool size is outside 0..64.',
  E_POOL_MAX_IDLE_INVALID: "a pool's maxIdle is outside 1 s..7 days.",
  E_POOL_FLAG_INVALID:
    'a `grexal serve --pool` flag is not `NAME=IMAGE[,desktop][,runtime=R][,size=N][,maxIdle=D]`.',
  E_POOL_IMAGE_NOT_FOUND: "a pool's image is not in the engine (the fix names the build command).",
  E_POOL_DESKTOP_IMAGE:
    'a desktop pool names an image without a desktop (its `grexal.image` label is not `desktop`).',
  E_POOL_LIMIT_HOST: "a pool's memory limit is over this host's memory.",
  E_POOL_RUN_LIMIT:
    "a pool names `limits.timeoutMs`, which is its runs' to give: the deadline is bound at the claim, from the sandbox request.",
} as const;

/** One problem found in a request: a stable code, where it is, and how to fix it. */
export interface Problem {
  code: string;
  path: string;
  message: string;
  fix?: string;
}

export interface GrexalErrorOptions {
  details?: unknown;
  cause?: unknown;
}

export class GrexalError extends Error {
  override readonly name = 'GrexalError';
  readonly code: ErrorCode;
  readonly details: unknown;

  constructor(code: ErrorCode, message: string, options: GrexalErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
  }

  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  toJSON(): { code: ErrorCode; message: string; details?: unknown } {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details };
  }
}

/** A refused request: every problem at once, nothing created. */
export class ValidationError extends GrexalError {
  readonly problems: Problem[];

  constructor(problems: Problem[], what = 'request') {
    const first = problems[0];
    const head = first ? `${first.path || '(root)'}: ${first.message}` : 'invalid';
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more problem(s))` : '';
    super('E_VALIDATION', `Invalid ${what}: ${head}${more}`, { details: problems });
    this.problems = problems;
  }
}

export function isGrexalError(value: unknown): value is GrexalError {
  return value instanceof GrexalError;
}

/** Wraps anything thrown into a GrexalError, keeping the original as the cause. */
export function toGrexalError(error: unknown): GrexalError {
  if (error instanceof GrexalError) return error;
  if (error instanceof Error && error.name === 'AbortError') {
    return new GrexalError('E_ABORTED', 'The operation was cancelled.', { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new GrexalError('E_INTERNAL', `Unexpected failure: ${message}`, { cause: error });
}
