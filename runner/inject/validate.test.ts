import { describe, expect, it } from 'vitest';
import { GrexalError, type Problem, ValidationError } from '../errors.ts';
import { RESERVED_ENV_NAMES } from './names.ts';
import { PROBLEM_CODES } from './problem-codes.ts';
import { DEFAULT_MAX_TOTAL_FILE_BYTES } from './schemas.ts';
import { designConnections } from './testing/design-connections.ts';
import { validateInjectionInput } from './validate.ts';

const KEY = 'sk-test-0123456789';
const b64 = (text: string | Buffer) => Buffer.from(text).toString('base64');

/** The DESIGN §4 example, with credentials for every pre-collected mode. */
function example() {
  return {
    manifest: {
      connections: [
        ...designConnections(),
        {
          id: 'linkedin',
          mode: 'browser_login',
          label: 'LinkedIn',
          loginUrl: 'https://www.linkedin.com/login',
        },
      ] as Record<string, unknown>[],
    },
    credentials: {
      openai: { fields: { api_key: KEY } },
      aws: { fields: { access_key: 'AKIAEXAMPLE0001', secret_key: 'aws-secret-0123456789', region: 'eu' } },
      gmail: {
        access_token: 'ya29.access-token',
        refresh_token: '1//refresh-token',
        expires_at: Date.now() + 3_600_000,
      },
      gcp: { files: { 'service-account.json': { base64: b64('{"type":"service_account"}\n') } } },
    } as Record<string, unknown>,
  };
}

function problemsOf(manifest: unknown, credentials: unknown, cap = DEFAULT_MAX_TOTAL_FILE_BYTES): Problem[] {
  try {
    validateInjectionInput(manifest, credentials, cap);
  } catch (error) {
    if (error instanceof ValidationError) return error.problems;
    throw error;
  }
  throw new Error('expected a ValidationError');
}

/** [code, path] pairs, for compact assertions. */
const codes = (problems: Problem[]) => problems.map((p) => [p.code, p.path]);

function withConnection(patch: (c: Record<string, unknown>[]) => void) {
  const input = example();
  patch(input.manifest.connections);
  return input;
}

describe('validateInjectionInput: accepted input', () => {
  it('accepts the DESIGN example and wraps every value as a Secret', () => {
    const { manifest, credentials } = example();
    const result = validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES);
    expect(result.connections.map((c) => c.id)).toEqual(['openai', 'aws', 'gmail', 'gcp', 'linkedin']);
    const openai = result.credentials.get('openai');
    expect(openai?.mode === 'secret_input' && openai.fields.get('api_key')?.reveal()).toBe(KEY);
    expect(JSON.stringify(Object.fromEntries(result.credentials))).not.toContain(KEY);
    expect(result.credentials.has('linkedin')).toBe(false);
  });

  it('lets an optional connection go without a credential', () => {
    const { manifest, credentials } = example();
    manifest.connections[0]!.required = false;
    delete credentials.openai;
    expect(
      validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES).credentials.has('openai'),
    ).toBe(false);
  });

  it('accepts base64 wrapped over lines', () => {
    const { manifest, credentials } = example();
    const wrapped = b64('x'.repeat(200)).replace(/(.{76})/g, '$1\n');
    credentials.gcp = { files: { 'service-account.json': { base64: wrapped } } };
    const gcp = validateInjectionInput(manifest, credentials, DEFAULT_MAX_TOTAL_FILE_BYTES).credentials.get(
      'gcp',
    );
    expect(gcp?.mode === 'file_upload' && gcp.files.get('service-account.json')?.toString()).toBe(
      'x'.repeat(200),
    );
  });
});

describe('validateInjectionInput: bad connection ids', () => {
  const bad = ['../x', 'a/b', '..', '', 'a'.repeat(65), 'OpenAI', 'nul\0id', '-lead', '_lead', 'sp ace'];
  for (const id of bad) {
    it(`refuses ${JSON.stringify(id.length > 20 ? `${id.slice(0, 10)}…(${id.length})` : id)}`, () => {
      const input = withConnection((c) => {
        c[0]!.id = id;
      });
      delete input.credentials.openai;
      expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
        ['E_CONNECTION_ID_INVALID', 'connections[0].id'],
      ]);
    });
  }

  it('accepts a 64-character id', () => {
    const input = withConnection((c) => {
      c[0]!.id = 'a'.repeat(64);
    });
    input.credentials['a'.repeat(64)] = input.credentials.openai;
    delete input.credentials.openai;
    expect(() =>
      validateInjectionInput(input.manifest, input.credentials, DEFAULT_MAX_TOTAL_FILE_BYTES),
    ).not.toThrow();
  });

  it('refuses duplicate ids', () => {
    const input = withConnection((c) => {
      c[1]!.id = 'openai';
    });
    delete input.credentials.aws;
    expect(codes(problemsOf(input.manifest, input.credentials))).toContainEqual([
      'E_CONNECTION_ID_DUPLICATE',
      'connections[1].id',
    ]);
  });
});

describe('validateInjectionInput: env names and targets', () => {
  const reservedSamples = [
    'PATH',
    'HOME',
    'LD_PRELOAD',
    'LD_LIBRARY_PATH',
    'GREXAL_TOKEN',
    'NODE_OPTIONS',
    'PYTHONPATH',
    'BASH_ENV',
  ];
  for (const name of reservedSamples) {
    it(`refuses reserved ${name}`, () => {
      const input = withConnection((c) => {
        c[0]!.env = { [name]: 'api_key' };
      });
      expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
        ['E_ENV_NAME_RESERVED', `connections[0].env.${name}`],
      ]);
    });
  }

  it('documents a reserved list that includes the basics', () => {
    for (const name of ['PATH', 'HOME', 'NODE_OPTIONS']) expect(RESERVED_ENV_NAMES.has(name)).toBe(true);
  });

  for (const name of ['lower', '1ABC', 'A-B', 'A B', '', 'A'.repeat(129)]) {
    it(`refuses invalid env name ${JSON.stringify(name.slice(0, 12))}`, () => {
      const input = withConnection((c) => {
        c[0]!.env = { [name]: 'api_key' };
      });
      expect(problemsOf(input.manifest, input.credentials).map((p) => p.code)).toEqual([
        'E_ENV_NAME_INVALID',
      ]);
    });
  }

  it('refuses a mapping to an undeclared field or file', () => {
    const input = withConnection((c) => {
      c[0]!.env = { OPENAI_API_KEY: 'apikey', OPENAI_FILE: 'file:key.txt' };
      c[3]!.env = { GOOGLE_APPLICATION_CREDENTIALS: 'file:other.json', GCP_FIELD: 'service-account.json' };
    });
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_ENV_TARGET_UNKNOWN', 'connections[0].env.OPENAI_API_KEY'],
      ['E_ENV_TARGET_UNKNOWN', 'connections[0].env.OPENAI_FILE'],
      ['E_ENV_TARGET_UNKNOWN', 'connections[3].env.GOOGLE_APPLICATION_CREDENTIALS'],
      ['E_ENV_TARGET_UNKNOWN', 'connections[3].env.GCP_FIELD'],
    ]);
  });

  it('accepts file:<name> of a secret_input file', () => {
    const input = withConnection((c) => {
      (c[1]!.env as Record<string, string>).AWS_SHARED_CREDENTIALS_FILE = 'file:credentials.json';
    });
    expect(() =>
      validateInjectionInput(input.manifest, input.credentials, DEFAULT_MAX_TOTAL_FILE_BYTES),
    ).not.toThrow();
  });

  it('refuses one env name set by two connections', () => {
    const input = withConnection((c) => {
      c[1]!.env = { OPENAI_API_KEY: 'access_key' };
    });
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_ENV_NAME_DUPLICATE', 'connections[1].env.OPENAI_API_KEY'],
    ]);
  });
});

describe('validateInjectionInput: file names and contents', () => {
  for (const name of ['a/b.json', '../x', '..', '.', '.hidden', 'nul\0.json', 'sp ace', '']) {
    it(`refuses file name ${JSON.stringify(name)}`, () => {
      const input = withConnection((c) => {
        c[3]!.files = [{ name }];
        delete c[3]!.env;
      });
      delete input.credentials.gcp;
      (input.manifest.connections[3] as { required?: boolean }).required = false;
      expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
        ['E_FILE_NAME_INVALID', 'connections[3].files[0].name'],
      ]);
    });
  }

  it('refuses a secret_input file name with a slash', () => {
    const input = withConnection((c) => {
      c[1]!.file = 'dir/credentials.json';
    });
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_FILE_NAME_INVALID', 'connections[1].file'],
    ]);
  });

  it('refuses invalid base64, an empty file, a file over maxBytes', () => {
    const input = example();
    input.manifest.connections[3]!.files = [
      { name: 'a.pem' },
      { name: 'b.pem' },
      { name: 'c.pem', maxBytes: 4 },
    ];
    delete input.manifest.connections[3]!.env;
    input.credentials.gcp = {
      files: {
        'a.pem': { base64: 'not base64!' },
        'b.pem': { base64: '' },
        'c.pem': { base64: b64('12345') },
      },
    };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_FILE_BASE64_INVALID', 'credentials.gcp.files["a.pem"].base64'],
      ['E_FILE_EMPTY', 'credentials.gcp.files["b.pem"]'],
      ['E_FILE_TOO_LARGE', 'credentials.gcp.files["c.pem"]'],
    ]);
  });

  it('refuses a missing and an undeclared file', () => {
    const input = example();
    input.credentials.gcp = { files: { 'other.json': { base64: b64('{}') } } };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_FILE_MISSING', 'credentials.gcp.files["service-account.json"]'],
      ['E_FILE_UNDECLARED', 'credentials.gcp.files["other.json"]'],
    ]);
  });

  it('refuses files over the total cap', () => {
    const input = example();
    input.credentials.gcp = { files: { 'service-account.json': { base64: b64(Buffer.alloc(60_000, 1)) } } };
    expect(codes(problemsOf(input.manifest, input.credentials, 50_000))).toEqual([
      ['E_FILES_TOTAL_TOO_LARGE', 'credentials'],
    ]);
  });
});

describe('validateInjectionInput: credentials', () => {
  it('refuses credentials for an undeclared connection', () => {
    const input = example();
    input.credentials.github = { fields: { token: 'ghp_0123456789' } };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_CREDENTIAL_UNDECLARED', 'credentials.github'],
    ]);
  });

  it("refuses a payload of the wrong mode's shape", () => {
    const input = example();
    input.credentials.openai = { access_token: 'ya29.0123456789' };
    input.credentials.gmail = { fields: { token: 'x'.repeat(10) } };
    input.credentials.linkedin = { fields: { user: 'someone-long' } };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_CREDENTIAL_MODE_MISMATCH', 'credentials.openai'],
      ['E_CREDENTIAL_MODE_MISMATCH', 'credentials.gmail'],
      ['E_CREDENTIAL_MODE_MISMATCH', 'credentials.linkedin'],
    ]);
  });

  it('refuses missing, unknown, short and NUL field values without quoting them', () => {
    const input = example();
    input.credentials.aws = { fields: { access_key: 'short', region: 'e', extra: 'whatever-value' } };
    input.credentials.openai = { fields: { api_key: `sk-with\0nul-inside` } };
    const problems = problemsOf(input.manifest, input.credentials);
    expect(codes(problems)).toEqual([
      ['E_CREDENTIAL_VALUE_INVALID', 'credentials.openai.fields.api_key'],
      ['E_SECRET_TOO_SHORT', 'credentials.aws.fields.access_key'],
      ['E_CREDENTIAL_FIELD_MISSING', 'credentials.aws.fields.secret_key'],
      ['E_CREDENTIAL_FIELD_UNKNOWN', 'credentials.aws.fields.extra'],
    ]);
    expect(JSON.stringify(problems)).not.toMatch(/short|whatever-value|sk-with/);
  });

  it('accepts a short non-secret field', () => {
    const input = example();
    expect(() =>
      validateInjectionInput(input.manifest, input.credentials, DEFAULT_MAX_TOTAL_FILE_BYTES),
    ).not.toThrow();
  });

  it('refuses a short OAuth token and an expiry in seconds', () => {
    const input = example();
    input.credentials.gmail = { access_token: 'ya29', refresh_token: 'r', expires_at: 1_700_000_000 };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_SECRET_TOO_SHORT', 'credentials.gmail.access_token'],
      ['E_SECRET_TOO_SHORT', 'credentials.gmail.refresh_token'],
      ['E_CREDENTIAL_VALUE_INVALID', 'credentials.gmail.expires_at'],
    ]);
  });

  it('refuses unknown fields in a credential', () => {
    const input = example();
    input.credentials.gmail = { access_token: 'ya29.0123456789', id_token: 'x' };
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_FIELD_UNKNOWN', 'credentials.gmail'],
    ]);
  });
});

describe('validateInjectionInput: manifest structure', () => {
  it('refuses unknown fields and an unknown mode, with codes', () => {
    const input = withConnection((c) => {
      c[0]!.secretly = true;
      c[2]!.mode = 'magic_link';
    });
    delete input.credentials.gmail;
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_FIELD_UNKNOWN', 'connections[0]'],
      ['E_CONNECTION_MODE_INVALID', 'connections[2].mode'],
    ]);
  });

  it('reports every problem at once, across manifest and credentials', () => {
    const input = withConnection((c) => {
      c[0]!.id = 'Bad';
      c[1]!.env = { PATH: 'access_key' };
    });
    input.credentials.Bad = input.credentials.openai;
    delete input.credentials.openai;
    input.credentials.gcp = { files: { 'service-account.json': { base64: '%%%' } } };
    input.credentials.nobody = {};
    const found = codes(problemsOf(input.manifest, input.credentials));
    expect(found).toEqual(
      expect.arrayContaining([
        ['E_CONNECTION_ID_INVALID', 'connections[0].id'],
        ['E_ENV_NAME_RESERVED', 'connections[1].env.PATH'],
        ['E_FILE_BASE64_INVALID', 'credentials.gcp.files["service-account.json"].base64'],
        ['E_CREDENTIAL_UNDECLARED', 'credentials.nobody'],
      ]),
    );
    // The credential for the invalid connection "Bad" is not also called undeclared.
    expect(found.filter(([code]) => code === 'E_CREDENTIAL_UNDECLARED')).toHaveLength(1);
  });

  it('gives every problem a fix and a documented code', () => {
    const input = withConnection((c) => {
      c[0]!.id = '..';
      c[0]!.env = { LD_PRELOAD: 'nope' };
    });
    for (const p of problemsOf(input.manifest, input.credentials)) {
      expect(p.fix).toBeTruthy();
      expect(
        Object.keys(PROBLEM_CODES).concat(['E_FIELD_UNKNOWN', 'E_FIELD_TYPE', 'E_FIELD_REQUIRED']),
      ).toContain(p.code);
    }
  });
});

describe('validateInjectionInput: missing credentials', () => {
  it('names every missing required connection', () => {
    const input = example();
    delete input.credentials.openai;
    delete input.credentials.gcp;
    let error: unknown;
    try {
      validateInjectionInput(input.manifest, input.credentials, DEFAULT_MAX_TOTAL_FILE_BYTES);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(GrexalError);
    expect(error).not.toBeInstanceOf(ValidationError);
    expect((error as GrexalError).code).toBe('E_MISSING_CREDENTIALS');
    expect((error as GrexalError).message).toContain('openai, gcp');
    expect(codes((error as GrexalError).details as Problem[])).toEqual([
      ['E_CREDENTIAL_MISSING', 'credentials.openai'],
      ['E_CREDENTIAL_MISSING', 'credentials.gcp'],
    ]);
  });

  it('lists missing ones among other problems when the input is also invalid', () => {
    const input = example();
    delete input.credentials.openai;
    input.credentials.nobody = {};
    expect(codes(problemsOf(input.manifest, input.credentials))).toEqual([
      ['E_CREDENTIAL_UNDECLARED', 'credentials.nobody'],
      ['E_CREDENTIAL_MISSING', 'credentials.openai'],
    ]);
  });

  it('refuses lone surrogates in the manifest and in credential values, never quoting the value', () => {
    const input = example();
    (input.manifest.connections[0] as { label: string }).label = 'Open\ud800AI';
    input.credentials.openai = { fields: { api_key: `${KEY}\udfff` } };
    const problems = problemsOf(input.manifest, input.credentials);
    expect(codes(problems)).toEqual(
      expect.arrayContaining([
        ['E_STRING_UNENCODABLE', 'connections[0].label'],
        ['E_STRING_UNENCODABLE', 'credentials.openai.fields.api_key'],
      ]),
    );
    expect(JSON.stringify(problems)).not.toContain(KEY);
  });
});

describe('validateInjectionInput: names of Object.prototype members', () => {
  // Counterexamples of the API fuzz (runner/api/app.fuzz.test.ts): these names read
  // Object.prototype's members instead of the caller's (a TypeError, answered 500).
  it('reports a field or file declared as __proto__ and not sent as missing', () => {
    const manifest = {
      connections: [
        { id: 'a', mode: 'secret_input', fields: [{ key: 'api_key' }, { key: '__proto__', secret: false }] },
        { id: 'b', mode: 'file_upload', files: [{ name: '__proto__' }] },
      ],
    };
    const credentials = { a: { fields: { api_key: KEY } }, b: { files: {} } };
    expect(codes(problemsOf(manifest, credentials))).toEqual([
      ['E_CREDENTIAL_FIELD_MISSING', 'credentials.a.fields.__proto__'],
      ['E_FILE_MISSING', 'credentials.b.files.__proto__'],
    ]);
  });

  it('stops a run whose required connection `constructor` has no credential', () => {
    const manifest = { connections: [{ id: 'constructor', mode: 'secret_input', fields: [{ key: 'k' }] }] };
    let error: unknown;
    try {
      validateInjectionInput(manifest, {}, DEFAULT_MAX_TOTAL_FILE_BYTES);
    } catch (e) {
      error = e;
    }
    expect((error as GrexalError | undefined)?.code).toBe('E_MISSING_CREDENTIALS');
  });
});
