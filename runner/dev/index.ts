/** The agent author's loop behind `grexal dev` (and the demo): build, validate, run, take over. */
export { type AgentImage, buildAgentImage, devImageTag } from './agent-image.ts';
export { connectionsTemplate } from './connections-template.ts';
export {
  type ConnectionsWatch,
  type ConnectionsWatchOptions,
  type LiveCredentialTarget,
  watchConnections,
} from './connections-watch.ts';
export { parseEnvFlags } from './env-flags.ts';
export { askDeveloper, LOCAL_TAKEOVER_PROMPT, type LocalTakeoverIo } from './local-takeover.ts';
