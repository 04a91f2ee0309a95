export { DockerRuntime, containerConfig } from './docker-runtime.ts';
export { isInstanceAlive, instanceDirName } from './instance.ts';
export * from './runtime.ts';
