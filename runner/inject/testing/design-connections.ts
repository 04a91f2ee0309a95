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
