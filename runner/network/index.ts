export { type Address, type Cidr, parseAddress, parseCidr } from './address.ts';
export { type Decision, decide, decideName, type Verdict } from './decide.ts';
export { deniedRangeOf, deniedRanges, isDeniedAddress } from './denied.ts';
export type { DangerousDnsOverride, NetworkEvent } from './events.ts';
export { HostNetworkManager, type HostNetworkOptions } from './host-network.ts';
export {
  type NetworkManager,
  type PreparedNetwork,
  type PrepareOptions,
  type SandboxNetwork,
  UnwiredNetwork,
} from './manager.ts';
export { type EffectivePolicyInput, effectivePolicy } from './narrow.ts';
export { listRunnerTables, tableName } from './nft-table.ts';
export { dangerousOverrideFromEnv, OVERRIDE_ENV, parseDangerousDnsOverride } from './override.ts';
export {
  DEFAULT_POLICY,
  describePolicy,
  MAX_RULES,
  type NetworkPolicy,
  type NetworkPolicyInput,
  networkPolicySchema,
  parseNetworkPolicy,
  policyToJson,
} from './policy.ts';
export { NETWORK_PROBLEM_CODES, type NetworkProblemCode } from './problem-codes.ts';
export type { Rule } from './rule.ts';
export { DEFAULT_LINK_RANGE, linkAlias, listLinks } from './veth.ts';
