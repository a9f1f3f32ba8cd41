// The in-memory session registry against the registry contract, and against
// the fleet's part of it: several machines' registries on one MemoryStore.
import t from 'tap'
import { createMemoryRegistry } from '../../lib/session/registry.ts'
import { fleetContract, memoryFleet, record, registryContract } from './registry-contract.ts'

registryContract(t, (opts) => createMemoryRegistry(opts))

fleetContract(t, memoryFleet)

t.test('memory: at most maxRetained ended sessions, the oldest go first', async (t) => {
  const r = createMemoryRegistry({ retainEndedMs: 60_000, maxRetained: 2 })
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const s = record()
    ids.push(s.id)
    await r.insert(s, { maxSessions: 10, maxPerOwner: 10 })
    await r.finish({ ...s, status: 'ended', statusReason: 'x', endedAt: 1000 + i })
  }
  t.equal(await r.get(ids[0]!), undefined)
  t.ok(await r.get(ids[2]!))
  t.same([...await r.machinesOf(ids)].map(([id]) => id), ids.slice(1), 'a forgotten session is forgotten everywhere (its machine too)')
})
