// Every Redis key the fleet uses, named once. The registry's Lua (lua.ts)
// builds the same names from the prefix it is given (ARGV[1]); the names
// there are these, with `p` for the prefix.
//
//   <p>s:<id>          JSON record of a session (live or retained)
//   <p>sm              hash: session id → machine that runs it
//   <p>tok             hash: session id → fencing token (1 at insert, +1 per claim); every write carries it
//   <p>live:<machine>  set: live ids on that machine (its MAX_SESSIONS, liveCount)
//   <p>own:<ownerId>   set: live ids of an API key, fleet-wide (MAX_SESSIONS_PER_KEY, findSame)
//   <p>end:<ownerId>   zset: retained ids by endedAt
//   <p>ended           zset: every retained id by endedAt (prune, the retention bound)
//   <p>same:<lock>     the live session holding a start lock (key, Foundry, user, world)
//   <p>lock            hash: session id → its start lock
//   <p>act             hash: session id → last API call for it made on another machine (ms)
//   <p>seal:<id>       the session's credentials sealed with SESSION_SEAL_KEY (only with one)
//   <p>machine:<id>    a machine's heartbeat: JSON {id, sessions, maxSessions, closing, at}; its lease (expires)
//   <p>machines        set of machine ids ever seen (pruned when their heartbeat is gone)
//   <p>hs:<sha256>     id of the machine that made a handshake (keyed by the token's digest), expires with it
//   <p>gone:<id>       claim on a lapsed machine's sessions (one claimer), short-lived
//   <p>fleet:<id>      pub/sub channel of a machine (handover messages, signed)
//   <p>rl:…            @fastify/rate-limit's Redis store (plugins/rate-limit.ts)
import { createHash } from 'node:crypto'

export const PREFIX = 'fs:'

/** Tokens are keyed by their SHA-256: a Redis dump holds no usable token. */
export function digest (token: string): string {
  return createHash('sha256').update(token).digest('hex')
}

export function fleetKeys (p = PREFIX) {
  return {
    record: (id: string) => `${p}s:${id}`,
    machineOf: `${p}sm`,
    token: `${p}tok`,
    liveOn: (machine: string) => `${p}live:${machine}`,
    owned: (ownerId: string) => `${p}own:${ownerId}`,
    endedOf: (ownerId: string) => `${p}end:${ownerId}`,
    touches: `${p}act`,
    sealed: (id: string) => `${p}seal:${id}`,
    machine: (id: string) => `${p}machine:${id}`,
    machines: `${p}machines`,
    handshake: (token: string) => `${p}hs:${digest(token)}`,
    gone: (id: string) => `${p}gone:${id}`,
    channel: (machine: string) => `${p}fleet:${machine}`,
    rateLimit: `${p}rl:`
  }
}

export const KEY = fleetKeys()
export const channel = KEY.channel
