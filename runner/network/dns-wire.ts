/**
 * Just enough of the DNS wire format (RFC 1035) for the sandbox resolver: one question in, A
 * records out. Queries with compression, several questions or anything unusual are answered
 * FORMERR rather than guessed at.
 */

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

export interface DnsQuestion {
  id: number;
  /** Recursion desired, echoed back. */
  flags: number;
  name: string;
  type: number;
  class: number;
  /** The question section as received, echoed in the answer. */
  raw: Buffer;
}

/** Undefined for anything that is not a plain one-question query. */
export function parseQuery(packet: Buffer): DnsQuestion | undefined {
  if (packet.length < 17 || packet.length > 512) return undefined;
  const flags = packet.readUInt16BE(2);
  const isQuery = (flags & 0x8000) === 0 && ((flags >> 11) & 0xf) === 0;
  if (!isQuery || packet.readUInt16BE(4) !== 1 || packet.readUInt16BE(6) !== 0) return undefined;
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    const length = packet[at];
    if (length === undefined || length > 63) return undefined;
    at += 1;
    if (length === 0) break;
    if (at + length > packet.length) return undefined;
    labels.push(packet.subarray(at, at + length).toString('latin1'));
    at += length;
  }
  if (at + 4 > packet.length) return undefined;
  const name = labels.join('.').toLowerCase();
  if (name.length > 253 || !/^[a-z0-9._-]*$/.test(name)) return undefined;
  return {
    id: packet.readUInt16BE(0),
    flags,
    name,
    type: packet.readUInt16BE(at),
    class: packet.readUInt16BE(at + 2),
    raw: packet.subarray(12, at + 4),
  };
}

export function buildResponse(
  question: DnsQuestion,
  rcode: number,
  addresses: string[] = [],
  ttl = 60,
): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(question.id, 0);
  // QR, the query's RD bit, RA, and the answer code.
  header.writeUInt16BE(0x8000 | (question.flags & 0x0100) | 0x0080 | (rcode & 0xf), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(addresses.length, 6);
  const answers = addresses.map((address) => {
    const record = Buffer.alloc(16);
    record.writeUInt16BE(0xc00c, 0); // a pointer to the question's name
    record.writeUInt16BE(TYPE_A, 2);
    record.writeUInt16BE(1, 4);
    record.writeUInt32BE(Math.max(0, Math.min(ttl, 86_400)), 6);
    record.writeUInt16BE(4, 10);
    address.split('.').forEach((part, i) => {
      record[12 + i] = Number(part);
    });
    return record;
  });
  return Buffer.concat([header, question.raw, ...answers]);
}

/** Builds a query; for tests and the benchmark, which speak to the resolver like a sandbox. */
export function buildQuery(id: number, name: string, type = TYPE_A): Buffer {
  const labels = name.split('.').filter(Boolean);
  const parts = labels.map((label) =>
    Buffer.concat([Buffer.from([label.length]), Buffer.from(label, 'latin1')]),
  );
  const tail = Buffer.alloc(5);
  tail.writeUInt16BE(type, 1);
  tail.writeUInt16BE(1, 3);
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  return Buffer.concat([header, ...parts, tail]);
}

export function parseResponse(packet: Buffer): { id: number; rcode: number; addresses: string[] } {
  const id = packet.readUInt16BE(0);
  const rcode = packet.readUInt16BE(2) & 0xf;
  const count = packet.readUInt16BE(6);
  let at = 12;
  while (packet[at] !== 0) at += (packet[at] ?? 0) + 1;
  at += 5;
  const addresses: string[] = [];
  for (let i = 0; i < count; i++) {
    const type = packet.readUInt16BE(at + 2);
    const length = packet.readUInt16BE(at + 10);
    if (type === TYPE_A) addresses.push([...packet.subarray(at + 12, at + 16)].join('.'));
    at += 12 + length;
  }
  return { id, rcode, addresses };
}
