// Failure screenshots, kept in memory for a short time and bound to the API
// key that asked for them. Nothing is written to disk.
import { randomBytes } from 'node:crypto'

export interface ScreenshotStore {
  /** Keep a PNG; returns its id. The oldest goes when the store is full. */
  put: (ownerId: string, png: Uint8Array) => string
  /** The PNG, for its owner only, while it lasts. */
  get: (ownerId: string, id: string) => Uint8Array | null
  size: () => number
  close: () => void
}

export function createScreenshotStore (opts: { ttlMs: number, max: number, now?: () => number }): ScreenshotStore {
  const now = opts.now ?? Date.now
  const shots = new Map<string, { ownerId: string, png: Uint8Array, expires: number }>()
  const sweep = (): void => {
    const t = now()
    for (const [id, s] of shots) if (s.expires <= t) shots.delete(id)
  }
  const timer = setTimeout(function tick () { sweep(); timer.refresh() }, Math.min(opts.ttlMs, 60_000))
  timer.unref()
  return {
    put (ownerId, png) {
      sweep()
      while (shots.size >= opts.max) shots.delete(shots.keys().next().value as string)
      const id = randomBytes(16).toString('hex')
      shots.set(id, { ownerId, png, expires: now() + opts.ttlMs })
      return id
    },
    get (ownerId, id) {
      const s = shots.get(id)
      if (s === undefined || s.ownerId !== ownerId || s.expires <= now()) return null
      return s.png
    },
    size: () => shots.size,
    close () { clearTimeout(timer); shots.clear() }
  }
}
