/**
 * Credential delivery: validation of a manifest's connections and their credentials, the env and
 * file channels, the answers to ctx.connect() with OAuth refresh, and masking. The ctx socket server
 * (ctx-server.ts) frames the protocol; the sandbox lifecycle wires the two together.
 */

export {
  type CredentialProvider,
  HttpCredentialProvider,
  type HttpCredentialProviderOptions,
  type RefreshedToken,
  type RefreshRequest,
  refreshedTokenSchema,
  StaticCredentialProvider,
} from './credential-provider.ts';
export {
  browserLoginCredentialSchema,
  type Credentials,
  credentialSchema,
  credentialsSchema,
  fileUploadCredentialSchema,
  MIN_SECRET_LENGTH,
  oauthRedirectCredentialSchema,
  secretInputCredentialSchema,
} from './credentials-schema.ts';
export { CtxError, isCtxError } from './ctx-error.ts';
export {
  type CodedError,
  type CtxCall,
  type CtxHandler,
  type CtxHandlers,
  CtxServer,
  type CtxServerOptions,
} from './ctx-server.ts';
export { buildFilesTar, type FileEntry } from './files.ts';
export {
  type ConnectOptions,
  type InjectEvent,
  type Injection,
  type PrepareInjectionInput,
  prepareInjection,
} from './injection.ts';
export { connectionForChange, type LiveFiles } from './live-changes.ts';
export { MASK, Masker, type MaskerOptions } from './masker.ts';
export type { MaskingStreamOptions } from './masking-stream.ts';
export { isReservedEnvName, RESERVED_ENV_NAMES, RESERVED_ENV_PREFIXES } from './names.ts';
export { DEFAULT_REFRESH_WINDOW_MS } from './oauth.ts';
export { PROBLEM_CODES, type ProblemCode } from './problem-codes.ts';
export {
  browserLoginConnectionSchema,
  CONNECTION_MODES,
  type Connection,
  type ConnectionMode,
  connectionSchema,
  connectionsSchema,
  DEFAULT_MAX_TOTAL_FILE_BYTES,
  DEFAULT_RECONNECT_TIMEOUT_MS,
  fileUploadConnectionSchema,
  MAX_RECONNECT_TIMEOUT_MS,
  type Manifest,
  manifestSchema,
  oauthRedirectConnectionSchema,
  reconnectTimeoutMsSchema,
  secretInputConnectionSchema,
} from './schemas.ts';
export { Secret } from './secret.ts';
