export { containerConfig, DockerRuntime } from './docker-runtime.ts';
export { currentInstanceId, instanceDirName, isInstanceAlive } from './instance.ts';
export * from './runtime.ts';
