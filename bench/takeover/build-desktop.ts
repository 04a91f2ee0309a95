/**
 * Builds the desktop image of another checkout (its Dockerfile.desktop and its dist/, built there
 * with `npm run build`) under a tag of its own, for an A/B of bench/takeover against an older
 * runner: `grexal images build` always tags grexal/desktop, which must stay this checkout's.
 *
 *   node scripts/run-ts.mjs bench/takeover/build-desktop.ts --root /tmp/base --tag grexal/desktop-base
 */
import { parseArgs } from 'node:util';
import { collectContext } from '../../runner/images/context.ts';
import { IMAGE_TAGS, packContext } from '../../runner/images/index.ts';
import { DOCKERFILE_SPECS } from '../../runner/images/specs.ts';
import { DockerRuntime } from '../../runner/runtime/index.ts';

const { values } = parseArgs({ options: { root: { type: 'string' }, tag: { type: 'string' } } });
const { root, tag } = values;
if (!root || !tag || tag === IMAGE_TAGS.desktop) {
  process.stderr.write(`usage: --root CHECKOUT --tag TAG (not ${IMAGE_TAGS.desktop})\n`);
  process.exit(2);
}
const runtime = await DockerRuntime.connect();
const image = await runtime.buildImage({
  tag,
  context: packContext(await collectContext(root, DOCKERFILE_SPECS.desktop.sources)),
  buildArgs: { BASE: IMAGE_TAGS.base },
  labels: {},
  onProgress: ({ line }) => process.stdout.write(`${line}\n`),
});
console.log(`built ${tag} (${image.id.slice(7, 19)}) from ${root}`);
