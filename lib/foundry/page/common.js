// Page-side helpers every Foundry page script receives as `common`.
//
// Plain JavaScript, read as text by lib/foundry/page-scripts.ts and sent to
// the page as source: no compiler transforms it (a bundler's keepNames, as
// tsx's esbuild had, would add calls to a naming helper that does not exist in the page; issue 8). Keep it to what
// Chromium runs as it is, and free of anything from Node.
() => {
  /** Foundry's error toasts. */
  const ERROR_TOAST = '#notifications .notification.error'
  /** Error toasts and the inline errors of the /auth and /setup forms. */
  const ANY_ERROR = '#notifications .notification.error, .notification.error, p.error, .form-error'

  function errorCount () {
    return document.querySelectorAll(ERROR_TOAST).length
  }

  /** Text of the newest error Foundry shows ('' when none). `forms`: include inline form errors. */
  function lastError (forms) {
    const all = document.querySelectorAll(forms === true ? ANY_ERROR : ERROR_TOAST)
    return all.length > 0 ? (all[all.length - 1].textContent || '').trim() : ''
  }

  /** game.users as plain records; [] before Foundry filled it. Works for v11–v14 collections. */
  function users () {
    const col = globalThis.game && globalThis.game.users
    if (col === undefined || col === null) return []
    const raw = Array.isArray(col.contents) ? col.contents : typeof col.values === 'function' ? Array.from(col.values()) : Array.from(col)
    return raw.map((u) => ({
      id: String(u.id ?? u._id ?? ''),
      name: String(u.name ?? ''),
      role: Number(u.role ?? 0),
      active: u.active === true
    }))
  }

  function userCount () {
    const col = globalThis.game && globalThis.game.users
    return col === undefined || col === null ? 0 : Number(col.size ?? 0)
  }

  /** GET /api/status (no auth): {active, version, world} or null. */
  async function status (url) {
    try {
      const r = await fetch(url, { cache: 'no-store' })
      return r.ok ? await r.json() : null
    } catch (e) { return null }
  }

  /** POST JSON with the page's cookies, as Foundry's own pages do. */
  async function postJson (url, body) {
    const r = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body), credentials: 'same-origin' })
    return { status: r.status, text: await r.text() }
  }

  /** Empty every password field (before a failure screenshot). */
  function clearPasswords () {
    for (const i of Array.from(document.querySelectorAll('input[type=password], input[name*=password i]'))) i.value = ''
    return true
  }

  return { errorCount, lastError, users, userCount, status, postJson, clearPasswords }
}
