import { describe, expect, it } from 'vitest';
import { findOriginal } from './conntrack.ts';

const TABLE = [
  'ipv4     2 tcp      6 118 TIME_WAIT src=10.231.255.2 dst=203.0.113.1 sport=49566 dport=80 src=10.231.255.1 dst=10.231.255.2 sport=15001 dport=49566 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 udp      17 20 src=10.231.255.2 dst=10.231.255.1 sport=49566 dport=53 src=10.231.255.1 dst=10.231.255.2 sport=53 dport=49566 mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 432000 ESTABLISHED src=10.231.255.2 dst=203.0.113.9 sport=49566 dport=4444 src=10.231.255.1 dst=10.231.255.2 sport=15001 dport=49566 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 432000 ESTABLISHED src=10.231.255.22 dst=198.51.100.1 sport=40000 dport=443 src=10.231.255.21 dst=10.231.255.22 sport=15001 dport=40000 [ASSURED] mark=0 zone=0 use=2',
].join('\n');

describe('original destination from conntrack', () => {
  it('finds the live entry of the source address and port', () => {
    expect(findOriginal(TABLE, '10.231.255.2', 49566)).toEqual({ address: '203.0.113.9', port: 4444 });
    expect(findOriginal(TABLE, '10.231.255.22', 40000)).toEqual({ address: '198.51.100.1', port: 443 });
  });

  it('does not confuse an address with its prefix, nor a port with another', () => {
    expect(findOriginal(TABLE, '10.231.255.2', 40000)).toBeUndefined();
    expect(findOriginal(TABLE, '10.231.255.3', 49566)).toBeUndefined();
    expect(findOriginal('', '10.231.255.2', 49566)).toBeUndefined();
  });
});
