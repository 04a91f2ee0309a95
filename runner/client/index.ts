/**
 * The typed client of the orchestrator API (`grexal serve`): create, get, events, delete, and the
 * takeover's Done/Cancel. It imports only the API's wire types, never the server.
 */
export { isRunnerApiError, RunnerApiError } from './errors.ts';
export {
  type CallOptions,
  type EventsOptions,
  RunnerClient,
  type RunnerClientOptions,
  type StreamEvent,
  type TakeoverSnapshot,
} from './runner-client.ts';
export { type SseMessage, SseParser } from './sse-parser.ts';
