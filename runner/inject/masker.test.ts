import { once } from 'node:events';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { base64Alignments } from './mask-forms.ts';
import { MASK, Masker } from './masker.ts';
import { Secret } from './secret.ts';

const SECRET = 'sk-Canary/+Value_42=x y&z"q\\';

function masker(...values: string[]): Masker {
  const m = new Masker();
  for (const v of values) expect(m.learn(new Secret(v))).toBe(true);
  return m;
}

/** Feeds chunks through a masking stream and returns everything it emitted. */
async function throughStream(m: Masker, chunks: (string | Buffer)[], idleFlushMs = 1000): Promise<Buffer> {
  const stream = m.createMaskingStream({ idleFlushMs });
  const out: Buffer[] = [];
  stream.on('data', (b: Buffer) => out.push(b));
  for (const c of chunks) stream.write(c);
  stream.end();
  await once(stream, 'end');
  return Buffer.concat(out);
}

describe('Masker.mask', () => {
  it('masks the raw value and leaves the rest alone', () => {
    expect(masker(SECRET).mask(`key=${SECRET}; done`)).toBe(`key=${MASK}; done`);
  });

  it('masks base64 at each of the three alignments inside a larger blob', () => {
    const m = masker(SECRET);
    for (const prefix of ['', 'a', 'ab', 'abc', 'abcd']) {
      const blob = Buffer.from(`${prefix}${SECRET}tail-bytes`).toString('base64');
      expect(m.mask(blob)).toContain(MASK);
      const rest = m.mask(blob).split(MASK).join('');
      // What is left is at most the unstable edge characters plus the neighbours' encoding.
      expect(rest.length).toBeLessThan(blob.length - 20);
      const url = Buffer.from(`${prefix}${SECRET}tail-bytes`).toString('base64url');
      expect(m.mask(url)).toContain(MASK);
    }
  });

  it('masks URL-encoded, form-encoded and JSON-escaped forms', () => {
    const m = masker(SECRET);
    expect(m.mask(`?k=${encodeURIComponent(SECRET)}&x=1`)).toBe(`?k=${MASK}&x=1`);
    expect(m.mask(new URLSearchParams({ k: SECRET }).toString())).toBe(`k=${MASK}`);
    expect(m.mask(JSON.stringify({ k: SECRET }))).toBe(`{"k":"${MASK}"}`);
  });

  it('masks each line of a multi-line value', () => {
    const pem =
      '-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n  BKcwggSjAgEAAoIBAQC7\n-----END KEY-----';
    const m = masker(pem);
    expect(m.mask('line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC!')).toBe(`line: ${MASK}!`);
    expect(m.mask('BKcwggSjAgEAAoIBAQC7')).toBe(MASK);
    expect(m.mask(pem)).not.toContain('MIIE');
  });

  it('prefers the longest value at one position', () => {
    const m = masker('abcdefgh', 'abcdefgh12345678');
    expect(m.mask('xabcdefgh12345678y')).toBe(`x${MASK}y`);
    expect(m.mask('xabcdefgh1y')).toBe(`x${MASK}1y`);
  });

  it('never learns a value too short to mask safely', () => {
    const m = new Masker();
    expect(m.learn('short')).toBe(false);
    expect(m.mask('a short word')).toBe('a short word');
  });

  it('masks values with regex metacharacters literally', () => {
    const m = masker('a.b*c+d?(e)[f]{g}|h^$\\/');
    expect(m.mask('zzzzzzzz a.b*c+d?(e)[f]{g}|h^$\\/ azbxc')).toBe(`zzzzzzzz ${MASK} azbxc`);
  });

  it('handles many values in one pass', () => {
    const values = Array.from(
      { length: 300 },
      (_, i) => `tok_${i.toString(36)}_${'q'.repeat(i % 7)}Zz9-${i}`,
    );
    const m = masker(...values);
    const text = values.map((v, i) => `${i}:${v};`).join('');
    const masked = m.mask(text);
    for (const v of values) expect(masked).not.toContain(v);
    expect(masked.startsWith(`0:${MASK};1:${MASK};`)).toBe(true);
  });

  it('learns a refreshed value after masking has started', () => {
    const m = masker('first-secret-1');
    expect(m.mask('second-secret-2')).toBe('second-secret-2');
    m.learn('second-secret-2');
    expect(m.mask('second-secret-2')).toBe(MASK);
  });

  it('learns the secret values inside a JSON key file, line by line', () => {
    const m = new Masker();
    const file = JSON.stringify({
      type: 'service_account',
      client_email: 'agent@example.iam.gserviceaccount.com',
      token_uri: 'https://oauth2.googleapis.com/token',
      private_key_id: 'abcdef0123456789',
      private_key:
        '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASCBKcwggSjAgEAAoIB\n-----END PRIVATE KEY-----\n',
    });
    expect(m.learnFile(Buffer.from(file))).toBe(true);
    expect(m.mask('id abcdef0123456789; key line AQEFAASCBKcwggSjAgEAAoIB')).toBe(
      `id ${MASK}; key line ${MASK}`,
    );
    const readable =
      'type service_account for agent@example.iam.gserviceaccount.com via https://oauth2.googleapis.com/token';
    expect(m.mask(readable)).toBe(readable);
  });

  it('learns binary files by their base64', () => {
    const m = new Masker();
    const der = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37 + 200) % 256));
    expect(m.learnFile(der)).toBe(true);
    expect(m.mask(der.toString('base64'))).not.toMatch(/[A-Za-z0-9+/]{20}/);
  });
});

describe('base64Alignments', () => {
  it('gives substrings of the real encoding at each offset', () => {
    const value = Buffer.from('0123456789');
    const forms = base64Alignments(value);
    expect(forms).toHaveLength(3);
    for (const [k, form] of forms.entries()) {
      const blob = Buffer.concat([Buffer.from('xyz'.slice(0, k)), value, Buffer.from('!!')]).toString(
        'base64',
      );
      expect(blob).toContain(form);
    }
  });
});

describe('masking stream', () => {
  it('masks a value split across chunks at every split point', async () => {
    const m = masker(SECRET);
    const line = `before ${SECRET} after\n`;
    for (let i = 1; i < line.length; i++) {
      const out = await throughStream(m, [line.slice(0, i), line.slice(i)]);
      expect(out.toString()).toBe(`before ${MASK} after\n`);
    }
  });

  it('masks a value written one byte at a time', async () => {
    const m = masker(SECRET);
    const bytes = Buffer.from(`>${SECRET}<`);
    const out = await throughStream(
      m,
      [...bytes].map((b) => Buffer.from([b])),
    );
    expect(out.toString()).toBe(`>${MASK}<`);
  });

  it('masks a multi-byte UTF-8 value split inside a character', async () => {
    const m = masker('pässwörd-ünïcode');
    const bytes = Buffer.from('x pässwörd-ünïcode y');
    const out = await throughStream(m, [bytes.subarray(0, 4), bytes.subarray(4)]);
    expect(out.toString()).toBe(`x ${MASK} y`);
  });

  it('passes binary output through byte for byte', async () => {
    const m = masker(SECRET);
    const binary = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const out = await throughStream(m, [binary.subarray(0, 100), binary.subarray(100)]);
    expect(out.equals(binary)).toBe(true);
  });

  it('emits a prompt that cannot start a secret at once, without waiting for more data', async () => {
    const m = masker(SECRET);
    const stream = m.createMaskingStream({ idleFlushMs: 60_000 });
    const got = once(stream, 'data');
    stream.write('Enter your name: ');
    const [chunk] = (await got) as [Buffer];
    expect(chunk.toString()).toBe('Enter your name: ');
    stream.destroy();
  });

  it('holds back a tail that could be the start of a value, and masks it once complete', async () => {
    const m = masker(SECRET);
    const stream = m.createMaskingStream({ idleFlushMs: 60_000 });
    const chunks: string[] = [];
    stream.on('data', (b: Buffer) => chunks.push(b.toString()));
    stream.write('prompt sk-Can');
    await new Promise((resolve) => setImmediate(resolve));
    expect(chunks.join('')).toBe('prompt ');
    stream.end(`${SECRET.slice(6)}!`);
    await once(stream, 'end');
    expect(chunks.join('')).toBe(`prompt ${MASK}!`);
  });

  it('releases a held tail after the idle delay', async () => {
    const m = masker(SECRET);
    const stream = m.createMaskingStream({ idleFlushMs: 5 });
    const chunks: string[] = [];
    stream.on('data', (b: Buffer) => chunks.push(b.toString()));
    stream.write('prompt sk-Can');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(chunks.join('')).toBe('prompt sk-Can');
    stream.end(' done');
    await once(stream, 'end');
    expect(chunks.join('')).toBe('prompt sk-Can done');
  });

  it('releases a long held tail as the mask: the agent paused inside a secret', async () => {
    const m = masker(SECRET);
    const stream = m.createMaskingStream({ idleFlushMs: 5 });
    const chunks: string[] = [];
    stream.on('data', (b: Buffer) => chunks.push(b.toString()));
    stream.write(`split:${SECRET.slice(0, 10)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
    stream.end(`${SECRET.slice(10)}:end`);
    await once(stream, 'end');
    expect(chunks.join('')).toBe(`split:${MASK}:end`);
  });

  it('masks a value learned while the stream runs', async () => {
    const m = masker('first-secret-1');
    const stream = m.createMaskingStream();
    const out: Buffer[] = [];
    stream.on('data', (b: Buffer) => out.push(b));
    stream.write('a first-secret-1\n');
    m.learn('second-secret-2');
    stream.end('b second-secret-2\n');
    await once(stream, 'end');
    expect(Buffer.concat(out).toString()).toBe(`a ${MASK}\nb ${MASK}\n`);
  });
});

describe('Secret', () => {
  it('never prints itself', () => {
    const s = new Secret('hunter2-hunter2');
    expect(String(s)).toBe('[redacted]');
    expect(`${s}`).toBe('[redacted]');
    expect(JSON.stringify({ s })).toBe('{"s":"[redacted]"}');
    expect(inspect({ s })).toBe("{ s: '[redacted]' }".replace("'[redacted]'", '[redacted]'));
    expect(inspect(s)).not.toContain('hunter2');
    expect(s.reveal()).toBe('hunter2-hunter2');
  });
});
