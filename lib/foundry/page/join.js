// Foundry's /join page: a ~3 KB shell whose form its script renders after
// the socket answers getJoinData (foundry.md §2).
// v11 `form#join-game`, v12–v14.365 `#join-game-form`: `select[name=userid]`
// (option value = user id, disabled when active); v14.366/367+: a user name
// field `#join-username`. `#join-inactive`: no world runs.
//
// Plain JavaScript sent as source (see common.js for why).
(common) => {
  const WORLD_TITLE = '#main-header h1, header h1'
  const USER_SELECT = 'select[name=userid]'
  const USER_NAME = '#join-username'
  const ROOT = '#join-game'
  const INACTIVE = '#join-inactive'

  function worldTitle () {
    return ((document.querySelector(WORLD_TITLE) || {}).textContent || '').trim()
  }

  /**
   * Which form the page shows, once rendered and game.users filled:
   * {kind:'select'} (user list), {kind:'text'} (user name field),
   * {kind:'unknown'} (a form with no control we know), {kind:'inactive'}
   * (no world runs); false while still rendering (for polling).
   */
  function probe () {
    const hasUsers = common.userCount() > 0
    if (hasUsers && document.querySelector(USER_SELECT + ' option[value]:not([value=""])') !== null) return { kind: 'select' }
    if (hasUsers && document.querySelector(USER_NAME) !== null) return { kind: 'text' }
    const root = document.querySelector(ROOT)
    if (hasUsers && root !== null && root.tagName !== 'TEMPLATE' && root.querySelector('input, select, button') !== null) return { kind: 'unknown' }
    if (document.querySelector(INACTIVE) !== null) return { kind: 'inactive' }
    return false
  }

  /** The world's users from game.users, plus what the user list shows (a disabled option = active). */
  function users () {
    const list = common.users()
    for (const o of Array.from(document.querySelectorAll(USER_SELECT + ' option'))) {
      const known = list.find((u) => u.id === o.value)
      if (known !== undefined) known.active = known.active || o.disabled
      else if (o.value !== '') list.push({ id: o.value, name: (o.textContent || '').trim(), role: 0, active: o.disabled })
    }
    return list
  }

  return { worldTitle, probe, users, postJson: common.postJson, status: common.status }
}
