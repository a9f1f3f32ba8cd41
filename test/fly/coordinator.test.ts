// The fleet's decisions (lib/fleet/coordinator.ts) on a real Redis registry:
// the suite test/lib/coordinator.test.ts runs on the in-memory one.
import t from 'tap'
import { coordinatorSuite } from '../lib/coordinator-suite.ts'
import { redisFleet, startRedis } from './redis.ts'

const redis = await startRedis(t)
coordinatorSuite(t, () => redisFleet(redis.client))
