import { describe, expect, it } from 'vitest';
import { formatAddress, parseAddress } from './address.ts';
import { deniedRangeOf, deniedRanges, isDeniedAddress } from './denied.ts';

const denied = (text: string) => {
  const parsed = parseAddress(text);
  if (!parsed) throw new Error(text);
  return deniedRangeOf(parsed)?.range.text;
};

/** The first and last address of each range of the issue, and the neighbours just outside. */
const EDGES: [string, string | undefined][] = [
  ['0.0.0.0', '0.0.0.0/8'],
  ['0.255.255.255', '0.0.0.0/8'],
  ['1.0.0.0', undefined],
  ['9.255.255.255', undefined],
  ['10.0.0.0', '10.0.0.0/8'],
  ['10.255.255.255', '10.0.0.0/8'],
  ['11.0.0.0', undefined],
  ['100.63.255.255', undefined],
  ['100.64.0.0', '100.64.0.0/10'],
  ['100.127.255.255', '100.64.0.0/10'],
  ['100.128.0.0', undefined],
  ['126.255.255.255', undefined],
  ['127.0.0.1', '127.0.0.0/8'],
  ['127.255.255.255', '127.0.0.0/8'],
  ['128.0.0.0', undefined],
  ['169.253.255.255', undefined],
  ['169.254.169.254', '169.254.0.0/16'],
  ['169.255.0.0', undefined],
  ['172.15.255.255', undefined],
  ['172.17.0.1', '172.16.0.0/12'],
  ['172.32.0.0', undefined],
  ['192.167.255.255', undefined],
  ['192.168.0.1', '192.168.0.0/16'],
  ['192.169.0.0', undefined],
  ['198.17.255.255', undefined],
  ['198.18.0.0', '198.18.0.0/15'],
  ['198.19.255.255', '198.18.0.0/15'],
  ['198.20.0.0', undefined],
  ['223.255.255.255', undefined],
  ['224.0.0.1', '224.0.0.0/4'],
  ['239.255.255.255', '224.0.0.0/4'],
  ['240.0.0.1', '240.0.0.0/4'],
  ['255.255.255.255', '240.0.0.0/4'],
  ['8.8.8.8', undefined],
  ['203.0.113.7', undefined],
  ['::', '::/128'],
  ['::1', '::1/128'],
  ['::2', '0.0.0.0/8'], // IPv4-compatible ::0.0.0.2
  ['fbff:ffff::1', undefined],
  ['fc00::1', 'fc00::/7'],
  ['fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'fc00::/7'],
  ['fe80::1', 'fe80::/10'],
  ['febf:ffff::1', 'fe80::/10'],
  ['ff02::1', 'ff00::/8'],
  ['2001:db8::1', undefined],
  ['2606:4700::1111', undefined],
];

describe('always-denied ranges', () => {
  it.each(EDGES)('%s → %s', (address, range) => {
    expect(denied(address)).toBe(range);
  });

  it('judges IPv4-mapped, -compatible and NAT64 forms by the IPv4 address inside', () => {
    for (const [v4, range] of EDGES.filter(([a]) => a.includes('.'))) {
      for (const form of [`::ffff:${v4}`, `::${v4}`, `64:ff9b::${v4}`]) {
        // ::0.0.0.0 and ::0.0.0.1 are :: and ::1 themselves.
        const expected = form === '::0.0.0.0' ? '::/128' : range;
        expect(denied(form), form).toBe(expected);
      }
    }
    expect(denied('::ffff:a9fe:a9fe')).toBe('169.254.0.0/16');
    expect(denied('0:0:0:0:0:ffff:7f00:1')).toBe('127.0.0.0/8');
  });

  it('holds the metadata endpoint in every spelling', () => {
    for (const spelling of [
      '169.254.169.254',
      '::ffff:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '64:ff9b::a9fe:a9fe',
    ]) {
      expect(isDeniedAddress(spelling), spelling).toBe(true);
    }
    expect(isDeniedAddress('metadata.google.internal')).toBe(true);
  });

  it('lists every range of the issue', () => {
    expect(deniedRanges().map((r) => r.range.text)).toEqual(
      expect.arrayContaining([
        '0.0.0.0/8',
        '10.0.0.0/8',
        '100.64.0.0/10',
        '127.0.0.0/8',
        '169.254.0.0/16',
        '172.16.0.0/12',
        '192.168.0.0/16',
        '198.18.0.0/15',
        '224.0.0.0/4',
        '240.0.0.0/4',
        'fc00::/7',
        'fe80::/10',
        '::1/128',
        '::/128',
      ]),
    );
    for (const { range } of deniedRanges())
      expect(formatAddress({ family: range.family, value: range.base })).toBe(range.text.split('/')[0]);
  });
});
