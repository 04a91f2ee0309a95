export { Limiter } from './limiter.ts';
export { Pool, type PoolStatus } from './pool.ts';
export { type Claim, type PoolCapacity, Pools, type PoolsOptions, type RefillPolicy } from './pools.ts';
export type { EntryFactory, PoolEntry, PoolObserver } from './ports.ts';
export {
  DEFAULT_MAX_IDLE_MS,
  DEFAULT_POOL_SIZE,
  POOL_MAX_SIZE,
  type PoolRequest,
  type PoolSpec,
  parsePoolFlag,
  parsePoolSpec,
  poolBodySchema,
  poolNameSchema,
} from './spec.ts';
