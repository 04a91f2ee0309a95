import { describe, expect, it } from 'vitest';
import { parseBytes, parseDurationMs } from './units.ts';

describe('parseDurationMs', () => {
  it.each([
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['250ms', 250],
    ['2', 2_000],
    ['1.5s', 1_500],
  ])('%s → %d ms', (text, ms) => expect(parseDurationMs(text)).toBe(ms));

  it.each(['', 'soon', '-5s', '0', '5 parsecs', '1d'])('refuses %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});

describe('parseBytes', () => {
  it.each([
    ['512m', 512 * 1024 ** 2],
    ['2g', 2 * 1024 ** 3],
    ['256MiB', 256 * 1024 ** 2],
    ['64k', 65_536],
    ['1048576', 1_048_576],
  ])('%s → %d', (text, bytes) => expect(parseBytes(text)).toBe(bytes));

  it.each(['', '-1', '0', 'lots', '5t'])('refuses %j', (text) => expect(parseBytes(text)).toBeUndefined());
});
