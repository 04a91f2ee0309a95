export { containerConfig, DockerRuntime } from './docker-runtime.ts';
export { instanceDirName, isInstanceAlive } from './instance.ts';
export * from './runtime.ts';
