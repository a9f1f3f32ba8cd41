// A fixed-window counter store for @fastify/rate-limit. Its own LocalStore
// hands every caller the same mutable record, read after an await: a burst
// of concurrent requests all see the final count and all get 429 (600 at
// once → 600 refusals, none let through). This store answers each call with
// the count at that call. Bounded: the oldest windows go first.
export interface WindowCount { current: number, ttl: number }

export class WindowStore {
  private readonly windows = new Map<string, { count: number, start: number }>()

  private readonly maxKeys: number
  private readonly now: () => number

  constructor (maxKeys = 10_000, now: () => number = Date.now) {
    this.maxKeys = maxKeys
    this.now = now
  }

  incr (key: string, cb: (err: Error | null, res?: WindowCount) => void, timeWindow: number): void {
    cb(null, this.hit(key, timeWindow))
  }

  read (key: string, cb: (err: Error | null, res?: WindowCount) => void, timeWindow: number): void {
    cb(null, this.peek(key, timeWindow))
  }

  /** incr without the callback: count one and answer the count at this call. */
  hit (key: string, timeWindow: number): WindowCount {
    const t = this.now()
    let w = this.windows.get(key)
    if (w === undefined || w.start + timeWindow <= t) {
      this.windows.delete(key)
      if (this.windows.size >= this.maxKeys) this.windows.delete(this.windows.keys().next().value as string)
      w = { count: 0, start: t }
      this.windows.set(key, w)
    }
    w.count++
    return { current: w.count, ttl: w.start + timeWindow - t }
  }

  /** read without the callback: the count so far, counting nothing. */
  peek (key: string, timeWindow: number): WindowCount {
    const t = this.now()
    const w = this.windows.get(key)
    if (w === undefined || w.start + timeWindow <= t) return { current: 0, ttl: 0 }
    return { current: w.count, ttl: w.start + timeWindow - t }
  }

  child (): WindowStore {
    return new WindowStore(this.maxKeys, this.now)
  }

  size (): number { return this.windows.size }
}
