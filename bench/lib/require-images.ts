/**
 * A desktop bench's images, checked before it starts anything: a missing one stops it with the
 * command that builds it. The default baseline (grexal/desktop-x11vnc) is an older checkout's
 * image, which no `grexal images build` makes.
 */
import Docker from 'dockerode';
import { IMAGE_TAGS } from '../../runner/images/index.ts';

const OWN_TAGS = new Set(Object.values(IMAGE_TAGS));

/** How to build `image`, for the message naming it missing. */
export function buildHint(image: string): string {
  if (OWN_TAGS.has(image)) return 'build it with `bin/grexal images build`';
  return (
    'it is a baseline from another checkout: build it with `node scripts/run-ts.mjs ' +
    `bench/takeover/build-desktop.ts --root CHECKOUT --tag ${image}\`, or measure this ` +
    'checkout alone with `--images grexal/desktop` (with `--ahead-ab` for an A/B)'
  );
}

export async function requireImages(images: readonly string[]): Promise<void> {
  const docker = new Docker();
  const missing: string[] = [];
  for (const image of new Set(images)) {
    try {
      await docker.getImage(image).inspect();
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 404) throw error;
      missing.push(image);
    }
  }
  if (missing.length === 0) return;
  for (const image of missing) process.stderr.write(`bench: no image ${image}: ${buildHint(image)}\n`);
  process.exit(2);
}
