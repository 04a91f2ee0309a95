/** `GET /openapi.json`: OpenAPI 3.1, its schemas generated from the zod schemas the API validates with. */
import { z } from 'zod';
import { ERROR_CODES } from '../errors.ts';
import {
  createdSandboxSchema,
  documentedCreateSandboxBodySchema,
  errorEnvelopeSchema,
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
      summary: 'Server-Sent Events (state, log, connect, takeover.*, exit); see docs/api.md.',
      responses: {
        200: { description: 'An event stream; it ends after `exit`.', content: { 'text/event-stream': {} } },
        404: error('E_SANDBOX_NOT_FOUND.'),
        410: gone,
      },
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
      },
    },
  };
}
