/**
 * zod schemas for the credentials payload (`credentials` in the API, `.grexal/connections.json`
 * locally), keyed by connection id, exactly as DESIGN §4. These are the shapes alone, for the API
 * and its OpenAPI document; check-credentials.ts checks a payload against its manifest.
 */
import { z } from 'zod';

/** Longest credential value accepted in a field or token. */
export const MAX_VALUE_LENGTH = 65_536;
/** Secret values shorter than this are refused: masking them would blank common words. */
export const MIN_SECRET_LENGTH = 8;

export const secretInputCredentialSchema = z.strictObject({
  fields: z.record(z.string(), z.string()),
});

export const oauthRedirectCredentialSchema = z.strictObject({
  access_token: z.string(),
  refresh_token: z.string().optional(),
  /** Epoch milliseconds; absent when the token does not expire. */
  expires_at: z.number().int().nonnegative().optional(),
  /** Default `Bearer`. */
  token_type: z.string().min(1).max(64).optional(),
  scope: z.string().max(4096).optional(),
});

export const fileUploadCredentialSchema = z.strictObject({
  files: z.record(z.string(), z.strictObject({ base64: z.string() })),
});

/** browser_login takes nothing in advance; an empty object is accepted and ignored. */
export const browserLoginCredentialSchema = z.strictObject({});

export const credentialSchema = z.union([
  secretInputCredentialSchema,
  oauthRedirectCredentialSchema,
  fileUploadCredentialSchema,
  browserLoginCredentialSchema,
]);

export const credentialsSchema = z.record(z.string(), credentialSchema);

export type SecretInputCredential = z.output<typeof secretInputCredentialSchema>;
export type OauthRedirectCredential = z.output<typeof oauthRedirectCredentialSchema>;
export type FileUploadCredential = z.output<typeof fileUploadCredentialSchema>;
export type Credentials = z.output<typeof credentialsSchema>;
