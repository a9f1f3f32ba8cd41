// The in-memory session registry against the registry contract.
import t from 'tap'
import { createMemoryRegistry } from '../../lib/session/registry.js'
import { registryContract } from './registry-contract.js'

registryContract(t, (opts) => createMemoryRegistry(opts))

t.test('memory: at most maxRetained ended sessions, the oldest go first', async (t) => {
  const { record } = await import('./registry-contract.js')
  const r = createMemoryRegistry({ retainEndedMs: 60_000, maxRetained: 2 })
  const ids: string[] = []
  for (let i = 0; i < 3; i++) {
    const s = record()
    ids.push(s.id)
    await r.insert(s, { maxSessions: 10, maxPerOwner: 10 })
    await r.finish({ ...s, status: 'ended', statusReason: 'x', endedAt: 1000 + i })
  }
  t.equal(await r.get(ids[0]), undefined)
  t.ok(await r.get(ids[2]))
})
