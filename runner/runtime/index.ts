export { containerConfig, DockerRuntime } from './docker-runtime.ts';
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
