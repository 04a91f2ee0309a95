/**
 * The page's bundled script and stylesheet (noVNC included), built by scripts/build.mjs into
 * dist/takeover/ and served by the runner itself: no CDN, nothing fetched from elsewhere.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GrexalError } from '../errors.ts';
import { packageRoot } from '../package-root.ts';

export interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
  /** The ETag's hash: the page links `?v=<version>`, which a browser may then keep for good. */
  version: string;
}

/** The only files served; anything else under /takeover/assets/ is a 404. */
export const ASSET_TYPES: Record<string, string> = {
  'takeover.js': 'text/javascript; charset=utf-8',
  'takeover.css': 'text/css; charset=utf-8',
};

/** Where scripts/build.mjs puts the page's bundle: the package's dist/takeover/. */
export function defaultAssetsDir(): string {
  return join(packageRoot(), 'dist', 'takeover');
}

export class AssetStore {
  private readonly cache = new Map<string, Promise<Asset>>();

  constructor(private readonly dir: string = defaultAssetsDir()) {}

  /** undefined for a name that is not an asset; throws when the bundle was not built. */
  get(name: string): Promise<Asset> | undefined {
    // Own keys only: `__proto__` or `constructor` must be a 404, not a lookup of Object.prototype.
    const contentType = Object.hasOwn(ASSET_TYPES, name) ? ASSET_TYPES[name] : undefined;
    if (!contentType) return undefined;
    let asset = this.cache.get(name);
    if (!asset) {
      asset = this.load(name, contentType);
      this.cache.set(name, asset);
      asset.catch(() => this.cache.delete(name));
    }
    return asset;
  }

  private async load(name: string, contentType: string): Promise<Asset> {
    let body: Buffer;
    try {
      body = await readFile(join(this.dir, name));
    } catch (error) {
      throw new GrexalError(
        'E_INTERNAL',
        `The takeover page's ${name} is missing from ${this.dir}. Run \`npm run build\`.`,
        { cause: error },
      );
    }
    const version = createHash('sha256').update(body).digest('base64url').slice(0, 27);
    return { body, contentType, etag: `"${version}"`, version };
  }
}
