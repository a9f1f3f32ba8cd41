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

  return { ready, info, otherPrimaryGm }
}
