// The fleet's decisions (lib/fleet/coordinator.ts) on the in-memory fleet
// registry (the same suite runs on Redis in test/fly/coordinator.test.ts),
// and replay routing as a pure function.
import t from 'tap'
import { route } from '../../lib/fleet/coordinator.ts'
import { coordinatorSuite } from './coordinator-suite.ts'
import { memoryFleet, record } from './registry-contract.ts'

t.test('route: served here, replayed, replay missed, or its machine gone', async (t) => {
  const s = record({ status: 'active' })
  const base = { me: 'm1', replayed: false, session: s, machine: 'm2', live: ['m1', 'm2'] }
  t.same(route(base), { to: 'replay', machine: 'm2' })
  t.same(route({ ...base, replayed: true }), { to: 'missed', machine: 'm2' }, 'never replayed twice')
  t.same(route({ ...base, machine: 'm1' }), { to: 'here' })
  t.same(route({ ...base, machine: undefined }), { to: 'here' })
  t.same(route({ ...base, session: undefined }), { to: 'here' }, 'unknown or another key\'s: SESSION_NOT_FOUND here')
  t.same(route({ ...base, session: { ...s, status: 'ended' } }), { to: 'here' }, 'over: its final state from here')
  t.same(route({ ...base, live: ['m1'] }), { to: 'gone', machine: 'm2' })
  t.same(route({ ...base, machine: 'm2;elsewhere=true', live: ['m1', 'm2;elsewhere=true'] }), { to: 'gone', machine: 'm2;elsewhere=true' }, 'a malformed machine id never reaches fly-replay')
})

coordinatorSuite(t, memoryFleet)
