import { describe, expect, it } from 'vitest';
import { buildQuery, buildResponse, parseQuery, parseResponse, RCODE, TYPE_AAAA } from './dns-wire.ts';

describe('DNS wire format', () => {
  it('parses a query and answers it with A records', () => {
    const question = parseQuery(buildQuery(0x1234, 'API.Example.test'));
    expect(question).toMatchObject({ id: 0x1234, name: 'api.example.test', type: 1, class: 1 });
    if (!question) return;
    const answer = parseResponse(buildResponse(question, RCODE.NOERROR, ['203.0.113.7', '198.51.100.1']));
    expect(answer).toEqual({ id: 0x1234, rcode: 0, addresses: ['203.0.113.7', '198.51.100.1'] });
    expect(parseResponse(buildResponse(question, RCODE.REFUSED))).toEqual({
      id: 0x1234,
      rcode: 5,
      addresses: [],
    });
    expect(parseQuery(buildQuery(1, 'a.test', TYPE_AAAA))?.type).toBe(TYPE_AAAA);
  });

  it('refuses what is not a plain query, whatever the bytes', () => {
    const query = buildQuery(7, 'a.test');
    const response = Buffer.from(query);
    response[2] = 0x80;
    expect(parseQuery(response)).toBeUndefined();
    expect(parseQuery(Buffer.alloc(0))).toBeUndefined();
    expect(parseQuery(query.subarray(0, 15))).toBeUndefined();
    const compressed = Buffer.from(query);
    compressed[12] = 0xc0;
    expect(parseQuery(compressed)).toBeUndefined();
    for (let seed = 0; seed < 2000; seed++) {
      const junk = Buffer.from(query);
      junk[12 + (seed % (junk.length - 12))] = (seed * 37) & 0xff;
      expect(() => parseQuery(junk)).not.toThrow();
    }
  });
});
