/** The images module: builds `grexal/base`, `grexal/agent` and `grexal/desktop`. */
export { BASE_RECIPE_HASH, LABEL_BASE_SOURCE, REGISTRY_BASE } from './base.ts';
export {
  type BuildImagesOptions,
  type BuildImagesResult,
  type BuiltImage,
  buildImages,
} from './build-images.ts';
export { type ContextEntry, hashContext, packContext } from './context.ts';
export { IMAGE_NAMES, IMAGE_TAGS, type ImageName, LABEL_CONTEXT_HASH, LABEL_IMAGE } from './specs.ts';
