export { containerConfig, DockerRuntime, MAX_STOP_GRACE_MS } from './docker-runtime.ts';
export {
  IMAGE_NAME_MAX_LENGTH,
  type ImageReference,
  imagePathSegment,
  imageReferenceSchema,
  isImageReference,
  parseImageReference,
} from './image-reference.ts';
export { currentInstanceId, instanceDirName, isInstanceAlive } from './instance.ts';
export {
  IDS_DIR,
  type IdIssuer,
  type IdKind,
  type IdOrigin,
  InstanceIds,
  RANDOM_IDS,
} from './instance-ids.ts';
export * from './runtime.ts';
