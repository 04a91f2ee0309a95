/**
 * Ids that a later runner can place. Every sandbox and takeover id carries the issuing instance's
 * tag and a MAC keyed per state directory:
 *
 *   sbx_<hex(tag ‖ random ‖ mac)>         tag 4 bytes, random 10, mac 6
 *   tk_<base64url(tag ‖ random ‖ mac)>    tag 4 bytes, random 12, mac 6
 *
 * The random part keeps ids unguessable as before; the MAC (HMAC-SHA256 over prefix, tag and random,
 * truncated to 48 bits) means only a runner holding this state dir's key can mint an id that passes,
 * so a random or mistyped id stays "not found" (404) while a real id of a runner that has stopped
 * is "gone" (410). Each instance writes `<stateDir>/.ids/instances/<tag>` naming its instance id
 * (format in instance.ts), so an id of another runner that is still alive on the same state dir is
 * told apart from one of a dead runner. The key lives as long as the state dir (on /run: until
 * reboot); after that, old ids are simply unknown.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GrexalError } from '../errors.ts';
import { isInstanceAlive } from './instance.ts';

/** Where the key and the instance records live; dot-named so instance-dir reaping leaves it alone. */
export const IDS_DIR = '.ids';
const TAG_BYTES = 4;
const MAC_BYTES = 6;
const KEY_BYTES = 32;

export type IdKind = 'sbx' | 'tk';

const LAYOUT: Record<IdKind, { random: number; encoding: 'hex' | 'base64url' }> = {
  sbx: { random: 10, encoding: 'hex' },
  tk: { random: 12, encoding: 'base64url' },
};

/**
 * Who issued an id: this instance, an earlier one on this state dir that has stopped, another one
 * that still runs, or nobody known (random, malformed, or minted with another state dir's key).
 */
export type IdOrigin = 'current' | 'earlier' | 'other_live' | 'unknown';

export interface IdIssuer {
  mint(kind: IdKind): string;
  origin(id: string): IdOrigin;
}

export class InstanceIds implements IdIssuer {
  private constructor(
    private readonly key: Buffer,
    private readonly tag: Buffer,
    private readonly instancesDir: string,
  ) {}

  /**
   * Loads (or creates) the state dir's key and records this instance under a fresh tag. A handful
   * of tiny file calls, made synchronously: on a cold `grexal run`'s path each trip through the
   * thread pool cost more than the call itself.
   */
  static async open(stateDir: string, instanceId: string): Promise<InstanceIds> {
    const dir = join(stateDir, IDS_DIR);
    const instancesDir = join(dir, 'instances');
    mkdirSync(instancesDir, { recursive: true, mode: 0o700 });
    const key = loadOrCreateKey(join(dir, 'key'));
    pruneDeadRecords(instancesDir);
    for (;;) {
      const tag = randomBytes(TAG_BYTES);
      try {
        writeFileSync(join(instancesDir, tag.toString('hex')), instanceId, { flag: 'wx', mode: 0o600 });
        return new InstanceIds(key, tag, instancesDir);
      } catch (error) {
        // A tag another instance already holds (1 in 2^32): draw again.
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }

  mint(kind: IdKind): string {
    const random = randomBytes(LAYOUT[kind].random);
    const body = Buffer.concat([this.tag, random, this.mac(kind, this.tag, random)]);
    return `${kind}_${body.toString(LAYOUT[kind].encoding)}`;
  }

  origin(id: string): IdOrigin {
    const parsed = this.verify(id);
    if (!parsed) return 'unknown';
    if (parsed.equals(this.tag)) return 'current';
    const recorded = this.recordedInstance(parsed.toString('hex'));
    // A valid MAC without a record: the record was lost, yet only a runner with this key minted it.
    if (recorded !== undefined && isInstanceAlive(recorded)) return 'other_live';
    return 'earlier';
  }

  /** The id's tag when its MAC checks out under this state dir's key. */
  private verify(id: string): Buffer | undefined {
    const underscore = id.indexOf('_');
    const kind = id.slice(0, underscore);
    if (kind !== 'sbx' && kind !== 'tk') return undefined;
    const { random, encoding } = LAYOUT[kind];
    const text = id.slice(underscore + 1);
    const pattern = encoding === 'hex' ? /^[0-9a-f]+$/ : /^[A-Za-z0-9_-]+$/;
    if (!pattern.test(text)) return undefined;
    const body = Buffer.from(text, encoding);
    // Re-encoding must give the text back: no alternative spellings of one id.
    if (body.length !== TAG_BYTES + random + MAC_BYTES || body.toString(encoding) !== text) return undefined;
    const tag = body.subarray(0, TAG_BYTES);
    const mac = body.subarray(TAG_BYTES + random);
    const expected = this.mac(kind, tag, body.subarray(TAG_BYTES, TAG_BYTES + random));
    return timingSafeEqual(mac, expected) ? Buffer.from(tag) : undefined;
  }

  private mac(kind: IdKind, tag: Buffer, random: Buffer): Buffer {
    return createHmac('sha256', this.key)
      .update(`grexal-id:${kind}:`)
      .update(tag)
      .update(random)
      .digest()
      .subarray(0, MAC_BYTES);
  }

  /** Sync, small, and only reached for a valid id that is not this instance's. */
  private recordedInstance(tagHex: string): string | undefined {
    try {
      return readFileSync(join(this.instancesDir, tagHex), 'utf8');
    } catch {
      return undefined;
    }
  }
}

/**
 * Only live instances need a record: an id with a valid MAC and no record is an earlier runner's.
 * Pruning at each start keeps the directory as small as the number of runners alive.
 */
function pruneDeadRecords(instancesDir: string): void {
  for (const entry of readdirSync(instancesDir)) {
    const path = join(instancesDir, entry);
    let instanceId: string | undefined;
    try {
      instanceId = readFileSync(path, 'utf8');
    } catch {
      instanceId = undefined;
    }
    if (instanceId === undefined || !isInstanceAlive(instanceId)) rmSync(path, { force: true });
  }
}

function loadOrCreateKey(path: string): Buffer {
  // Once made, a key is only read: one call instead of four.
  try {
    return checkedKey(path, readFileSync(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  // Written aside, then linked into place: link() fails if the key exists, and a runner starting
  // at the same moment never reads a half-written key.
  const aside = `${path}.${randomBytes(6).toString('hex')}`;
  writeFileSync(aside, randomBytes(KEY_BYTES), { flag: 'wx', mode: 0o600 });
  try {
    linkSync(aside, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(aside);
  }
  return checkedKey(path, readFileSync(path));
}

function checkedKey(path: string, key: Buffer): Buffer {
  if (key.length === KEY_BYTES) return key;
  throw new GrexalError(
    'E_INTERNAL',
    `${path} is not a ${KEY_BYTES}-byte id key. Remove it and start the runner again (ids of earlier runners then read as unknown).`,
  );
}

/** Ids of a runner that knows no state dir (tests, embedders): random, never "earlier". */
export const RANDOM_IDS: IdIssuer = {
  mint(kind) {
    const random = randomBytes(LAYOUT[kind].random).toString(LAYOUT[kind].encoding);
    return `${kind}_${random}`;
  },
  origin() {
    return 'unknown';
  },
};
