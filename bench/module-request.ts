// A module request as the relay makes one: the relay stand-in sends
// {type: "search", requestId, query} over the module's WebSocket, the REST
// API module in the session's page walks every document the page holds
// (on the heavy /game some 800,000 objects) and answers with
// "search-result". Timed from send to answer, so a browser setting that
// slows the page's JavaScript (a V8 flag, a smaller heap) shows here.
import { randomUUID } from 'node:crypto'
import type { RelayStandin } from '../support/foundry/relay.ts'

export const SEARCH_QUERY = 'document 1999'

interface SearchResult { type: string, requestId: string, total?: number, walked?: number, error?: string }

/** One request to the module connected as `clientId`; resolves with its round trip in ms. */
export async function moduleRequest (relay: RelayStandin, clientId: string, timeoutMs = 20_000): Promise<{ ms: number, walked: number }> {
  const c = relay.open().find((x) => x.id === clientId)
  if (c === undefined) throw new Error(`no open relay connection for ${clientId}`)
  const requestId = randomUUID()
  const seen = c.messages.length
  const t = performance.now()
  relay.send(c, { type: 'search', requestId, query: SEARCH_QUERY })
  await relay.waitFor((x) => x === c && x.messages.length > seen &&
    x.messages.slice(seen).some((m) => (m as SearchResult | null)?.requestId === requestId), timeoutMs)
  const ms = performance.now() - t
  const reply = c.messages.slice(seen).find((m) => (m as SearchResult | null)?.requestId === requestId) as SearchResult
  // A light /game holds only its users, none named like the query: the walk is what counts.
  if (reply.type !== 'search-result' || reply.error !== undefined || (reply.walked ?? 0) === 0) {
    throw new Error(`module answered ${JSON.stringify(reply).slice(0, 200)}`)
  }
  return { ms, walked: reply.walked ?? 0 }
}

/** `rounds` requests to each module in turn, one at a time; every round trip in ms. */
export async function moduleRequests (relay: RelayStandin, clientIds: string[], rounds: number): Promise<number[]> {
  const out: number[] = []
  for (let r = 0; r < rounds; r++) {
    for (const id of clientIds) out.push((await moduleRequest(relay, id)).ms)
  }
  return out
}
