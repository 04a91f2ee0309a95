/** validateInjectionInput: file names, contents and sizes. */
import { describe, expect, it } from 'vitest';
import { b64, codes, example, problemsOf, withConnection } from './testing/validate-input.ts';

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
