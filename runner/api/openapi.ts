/** `GET /openapi.json`: OpenAPI 3.1, its schemas generated from the zod schemas the API validates with. */
import { z } from 'zod';
import { ERROR_CODES } from '../errors.ts';
import { poolBodySchema } from '../pool/index.ts';
import {
  createdSandboxSchema,
  credentialChangedSchema,
  documentedCreateSandboxBodySchema,
  documentedCredentialChangeBodySchema,
  errorEnvelopeSchema,
  poolStatusSchema,
  readyReportSchema,
  sandboxViewSchema,
} from './schemas.ts';

const json = (schema: z.ZodType) =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const jsonContent = (name: string) => ({ content: { 'application/json': { schema: ref(name) } } });
const error = (description: string) => ({ description, ...jsonContent('Error') });

const gone = error('E_SANDBOX_GONE: the id is from an earlier runner on this state dir, which stopped.');
const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };
const takeoverParams = [
  { name: 'takeoverId', in: 'path', required: true, schema: { type: 'string' } },
  { name: 'token', in: 'query', required: false, schema: { type: 'string' } },
];

const paths = {
  '/v1/sandboxes': {
    post: {
      summary: 'Create a sandbox; it starts in the background.',
      requestBody: { required: true, ...jsonContent('CreateSandbox') },
      responses: {
        201: { description: 'Created; follow /events for its progress.', ...jsonContent('Created') },
        400: error(
          'E_VALIDATION (details lists every problem: E_IMAGE_REFERENCE_INVALID at image, E_STRING_UNENCODABLE, …), E_MISSING_CREDENTIALS, E_IMAGE_NOT_FOUND, E_BODY_INVALID_JSON, E_BAD_REQUEST.',
        ),
        401: error('E_UNAUTHORIZED.'),
        413: error('E_BODY_TOO_LARGE.'),
        415: error('E_CONTENT_TYPE_UNSUPPORTED.'),
        429: error('E_TOO_MANY_SANDBOXES; see the Retry-After header.'),
        503: error('E_RUNNER_CLOSING.'),
      },
    },
  },
  '/v1/sandboxes/{id}': {
    parameters: [idParam],
    get: {
      summary: "A sandbox's state, exit and open takeover.",
      responses: {
        200: { description: 'The sandbox.', ...jsonContent('Sandbox') },
        404: error('E_SANDBOX_NOT_FOUND.'),
        410: gone,
      },
    },
    delete: {
      summary: 'Destroy the sandbox (idempotent); answers once nothing is left.',
      responses: {
        204: { description: 'Destroyed, or already gone.' },
        404: error('E_SANDBOX_NOT_FOUND.'),
        410: gone,
      },
    },
  },
  '/v1/sandboxes/{id}/credentials/{connectionId}': {
    parameters: [idParam, { name: 'connectionId', in: 'path', required: true, schema: { type: 'string' } }],
    put: {
      summary:
        "Give a running sandbox's connection a new credential: re-authorises a broken one (its waiting connect calls go on) or rotates a healthy one (files replaced atomically). See docs/api.md.",
      requestBody: { required: true, ...jsonContent('Credential') },
      responses: {
        200: { description: 'Changed.', ...jsonContent('CredentialChanged') },
        400: error(
          'E_VALIDATION: E_CREDENTIAL_UNDECLARED or E_CONNECTION_NOT_UPDATABLE at connectionId, or the problems of the credential for its mode (E_SECRET_TOO_SHORT, E_CREDENTIAL_MODE_MISMATCH, …); nothing changed.',
        ),
        404: error('E_SANDBOX_NOT_FOUND.'),
        409: error('E_SANDBOX_ENDED, E_SANDBOX_STARTING; nothing changed.'),
        410: gone,
        502: error(
          "E_CREDENTIAL_DELIVERY_FAILED: the sandbox's files could not be replaced; the old files and credential stay.",
        ),
      },
    },
    delete: {
      summary:
        "Remove a running sandbox's connection (idempotent): connect then answers not_connected (optional) or revoked (required), its files are removed.",
      responses: {
        204: { description: 'Removed, or already removed.' },
        400: error('E_VALIDATION: E_CREDENTIAL_UNDECLARED or E_CONNECTION_NOT_UPDATABLE at connectionId.'),
        404: error('E_SANDBOX_NOT_FOUND.'),
        409: error('E_SANDBOX_ENDED, E_SANDBOX_STARTING.'),
        410: gone,
        502: error('E_CREDENTIAL_DELIVERY_FAILED: the files could not be removed; the credential stays.'),
      },
    },
  },
  '/v1/sandboxes/{id}/network': {
    parameters: [idParam],
    patch: {
      summary: "Replace the sandbox's network policy, for its next connections.",
      requestBody: {
        required: true,
        content: {
          'application/json': {
            schema: {
              description:
                '"none", "public", or { "mode": "allow", "allow": ["api.example.com:443", "*.example.com", "203.0.113.0/24"] }.',
            },
          },
        },
      },
      responses: {
        200: { description: 'The policy now in force: { network: { mode, allow? } }.' },
        400: error('E_VALIDATION (details lists every problem of the policy).'),
        404: error('E_SANDBOX_NOT_FOUND.'),
      },
    },
  },
  '/v1/sandboxes/{id}/events': {
    parameters: [
      idParam,
      { name: 'Last-Event-ID', in: 'header', required: false, schema: { type: 'string' } },
      { name: 'lastEventId', in: 'query', required: false, schema: { type: 'string' } },
    ],
    get: {
      summary: 'Server-Sent Events (state, log, connect, connection.*, takeover.*, exit); see docs/api.md.',
      responses: {
        200: { description: 'An event stream; it ends after `exit`.', content: { 'text/event-stream': {} } },
        404: error('E_SANDBOX_NOT_FOUND.'),
        410: gone,
      },
    },
  },
  '/v1/pools': {
    get: {
      summary: 'Every warm pool of this runner: { pools: [Pool] }.',
      responses: { 200: { description: 'The pools.' } },
    },
  },
  '/v1/pools/{name}': {
    parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
    put: {
      summary: 'Make or replace a warm pool (a replaced pool is drained); entries fill in the background.',
      requestBody: { required: true, ...jsonContent('PoolSpec') },
      responses: {
        200: { description: 'Replaced.', ...jsonContent('Pool') },
        201: { description: 'Made.', ...jsonContent('Pool') },
        400: error(
          'E_VALIDATION (details: E_POOL_NAME_INVALID, E_POOL_SIZE_INVALID, E_POOL_MAX_IDLE_INVALID, E_POOL_IMAGE_NOT_FOUND with the build command, E_POOL_DESKTOP_IMAGE, E_POOL_LIMIT_HOST, E_LIMIT_INVALID, …), E_RUNTIME_NOT_FOUND.',
        ),
        503: error('E_RUNNER_CLOSING.'),
      },
    },
    get: {
      summary:
        "A pool's spec, its ready, starting and stale entries, claims, and failures (with `failing` while they continue).",
      responses: {
        200: { description: 'The pool.', ...jsonContent('Pool') },
        404: error('E_POOL_NOT_FOUND.'),
      },
    },
    delete: {
      summary: 'Drain and remove the pool; answers once its entries are gone.',
      responses: { 204: { description: 'Removed.' }, 404: error('E_POOL_NOT_FOUND.') },
    },
  },
  '/takeover/{takeoverId}': {
    parameters: takeoverParams,
    get: {
      summary: 'The takeover page (HTML).',
      security: [],
      responses: {
        200: { description: 'The page.' },
        410: { description: 'Ended, or ended when the runner restarted (an HTML page saying which).' },
      },
    },
  },
  '/v1/takeovers/{takeoverId}/stream': {
    parameters: takeoverParams,
    get: {
      summary: "WebSocket: the sandbox's desktop (RFB). Refused before the handshake with 401/403/404/410.",
      security: [],
      responses: { 101: { description: 'Switching protocols.' } },
    },
  },
  '/v1/takeovers/{takeoverId}/viewer': {
    parameters: takeoverParams,
    get: {
      summary:
        "The page's status poll (`&viewer=<key>`): whether this viewer has the keyboard and mouse, how many watch, the state and expiry.",
      security: [],
      responses: { 200: { description: '`{ controls, viewers, state, expiresAt }`.' } },
    },
  },
  '/v1/takeovers/{takeoverId}/timing': {
    parameters: takeoverParams,
    post: {
      summary:
        "The page's report of its first frame (`&viewer=<key>`; body `{ timeOrigin, connectMs, firstFrameMs }`, ms on the page's clock), counted once per viewer in grexal_takeover_first_frame_seconds.",
      security: [],
      responses: {
        204: { description: 'Taken (or already counted for this viewer).' },
        400: { description: 'E_VALIDATION: the body, naming the field.' },
      },
    },
  },
  '/v1/takeovers/{takeoverId}/complete': {
    parameters: takeoverParams,
    post: {
      summary: 'Done: the agent continues.',
      security: [],
      responses: { 200: { description: 'Ended.' } },
    },
  },
  '/v1/takeovers/{takeoverId}/cancel': {
    parameters: takeoverParams,
    post: {
      summary: 'Cancel: the agent gets takeover_cancelled.',
      security: [],
      responses: { 200: { description: 'Ended.' } },
    },
  },
  '/healthz': {
    get: {
      summary: 'Liveness: the process serves HTTP (whatever the engine does).',
      security: [],
      responses: { 200: { description: '`{ ok, closing, live }`.' } },
    },
  },
  '/readyz': {
    get: {
      summary:
        'Readiness: the engine answers within 2 s and the sandbox images are present; checked at most once per 2 s.',
      security: [],
      responses: {
        200: { description: 'Ready.', ...jsonContent('Ready') },
        503: error(
          'E_NOT_READY; details names each failed check (E_ENGINE_UNREACHABLE or E_TIMEOUT at engine, E_IMAGE_NOT_FOUND at images["…"], E_RUNNER_CLOSING at runner).',
        ),
      },
    },
  },
  '/metrics': {
    get: { summary: 'Prometheus text.', security: [], responses: { 200: { description: 'Metrics.' } } },
  },
};

/** Built once per API; the schemas do not change at run time. */
export function buildOpenApi(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'Grexal runner API',
      version,
      description: `Error codes: ${Object.keys(ERROR_CODES).join(', ')}. Any route may also answer 400 E_BAD_REQUEST, 404 E_ROUTE_NOT_FOUND, 405 E_METHOD_NOT_ALLOWED (with Allow), 408 E_REQUEST_TIMEOUT, 414 E_URL_TOO_LONG or 431 E_HEADERS_TOO_LARGE, in the Error envelope. See docs/api.md and docs/errors.md.`,
    },
    security: [{ bearer: [] }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        CreateSandbox: json(documentedCreateSandboxBodySchema),
        Created: json(createdSandboxSchema),
        Sandbox: json(sandboxViewSchema),
        Error: json(errorEnvelopeSchema),
        Ready: json(readyReportSchema),
        Credential: json(documentedCredentialChangeBodySchema),
        CredentialChanged: json(credentialChangedSchema),
        PoolSpec: json(poolBodySchema),
        Pool: json(poolStatusSchema),
      },
    },
  };
}
