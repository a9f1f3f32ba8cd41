// Foundry's /game page. Its static skeleton (#interface, #board…) exists
// long before the game is ready: only `game.ready` says it is (foundry.md §4).
//
// Plain JavaScript sent as source (see common.js for why).
(common) => {
  function ready () {
    return globalThis.game !== undefined && globalThis.game !== null && globalThis.game.ready === true
  }

  /** Who is logged in, into which world, system and Foundry version. */
  function info () {
    const g = globalThis.game || {}
    const user = g.user || {}
    const world = g.world || {}
    const system = g.system || {}
    return {
      userId: String(user.id ?? ''),
      userName: String(user.name ?? ''),
      role: Number(user.role ?? 0),
      worldId: String(world.id ?? ''),
      worldTitle: String(world.title ?? ''),
      systemId: String(system.id ?? ''),
      systemTitle: String(system.title ?? ''),
      systemVersion: String(system.version ?? ''),
      foundryVersion: String(g.version ?? (g.release && g.release.version) ?? '')
    }
  }

  /** Module 2.x connects only for the primary GM: is another active GM ahead of `me`? */
  function otherPrimaryGm (me) {
    return common.users().some((u) => u.id !== me && u.active && u.role === 4 && u.id < me)
  }

  /**
   * The fleet's lease, kept by the page itself: leave for about:blank (which
   * closes Foundry's socket and the module's relay connection) once `until`
   * (ms, this machine's clock) has passed without a later one arriving. It
   * runs in Chromium, so it holds while the service's Node process is
   * stalled. One timer, moved by each extension; none while nothing is due.
   *
   * The deadline is judged in a task of its own, never inside an extension,
   * and a passed one once more a task later: while this page's main thread
   * was busy (a heavy world's scripts), the service's extensions queued up
   * behind it, and the oldest, run first, is already past its deadline with
   * newer ones right behind it. The page then leaves a task later at most:
   * the machine's lease in the registry runs twice as long as its deadline.
   */
  function lease (until) {
    const w = globalThis
    w.__fsLeaseUntil = Math.max(w.__fsLeaseUntil || 0, until)
    if (w.__fsLeaseTimer !== undefined) clearTimeout(w.__fsLeaseTimer)
    const check = (last) => {
      const left = w.__fsLeaseUntil - Date.now()
      if (left > 0) { w.__fsLeaseTimer = setTimeout(() => check(false), left); return }
      if (!last) { w.__fsLeaseTimer = setTimeout(() => check(true), 0); return }
      w.__fsLeaseTimer = undefined
      location.replace('about:blank')
    }
    w.__fsLeaseTimer = setTimeout(() => check(false), Math.max(0, w.__fsLeaseUntil - Date.now()))
  }

  return { ready, info, otherPrimaryGm, lease }
}
