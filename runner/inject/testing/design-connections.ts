/**
 * The connections of DESIGN §4's grexal.json example (one of each shape of pre-collected
 * credential), shared by the unit tests, the integration tests and bench/inject. A fresh copy each
 * call: tests mutate what they get.
 */
export function designConnections(): Record<string, unknown>[] {
  return [
    {
      id: 'openai',
      mode: 'secret_input',
      label: 'OpenAI API key',
      required: true,
      fields: [{ key: 'api_key', secret: true }],
      env: { OPENAI_API_KEY: 'api_key' },
    },
    {
      id: 'aws',
      mode: 'secret_input',
      fields: [{ key: 'access_key' }, { key: 'secret_key' }, { key: 'region', secret: false }],
      env: { AWS_ACCESS_KEY_ID: 'access_key', AWS_SECRET_ACCESS_KEY: 'secret_key' },
      file: 'credentials.json',
    },
    { id: 'gmail', mode: 'oauth_redirect', provider: 'google', scopes: ['gmail.readonly'] },
    {
      id: 'gcp',
      mode: 'file_upload',
      files: [{ name: 'service-account.json', maxBytes: 65536 }],
      env: { GOOGLE_APPLICATION_CREDENTIALS: 'file:service-account.json' },
    },
  ];
}

/** Valid credentials for every connection of `designConnections()`; a fresh copy each call. */
export function designCredentials(): Record<string, unknown> {
  return {
    openai: { fields: { api_key: 'sk-test-0123456789' } },
    aws: { fields: { access_key: 'AKIAEXAMPLE0001', secret_key: 'aws-secret-0123456789', region: 'eu' } },
    gmail: {
      access_token: 'ya29.access-token',
      refresh_token: '1//refresh-token',
      expires_at: 4_102_444_800_000,
    },
    gcp: {
      files: {
        'service-account.json': { base64: Buffer.from('{"type":"service_account"}\n').toString('base64') },
      },
    },
  };
}

/** The secret values in `designCredentials()`: no error message may quote one. */
export const DESIGN_SECRET_VALUES = [
  'sk-test-0123456789',
  'aws-secret-0123456789',
  'ya29.access-token',
  '1//refresh-token',
];
