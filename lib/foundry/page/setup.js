// Foundry's /setup page: the world list, its first-load overlays, the launch
// control, and what a launch ends in (active, migration dialog, error toast).
//
// Plain JavaScript sent as source (see common.js for why).
(common) => {
  const LIST = '#worlds-list'
  const WORLD = '#worlds-list li.package.world'
  const TITLE = '.package-title'
  /** v11+ play link (delegated click); v10 button carries data-world. */
  const PLAY = '[data-action=worldLaunch], [data-action=launchWorld]'
  const PLAY_V10 = 'button[data-action=launchWorld]'
  const TELEMETRY_NO = '#telemetry button[data-action=no], .telemetry button[data-action=no]'
  const TOUR_EXIT = '.tour-overlay button.tour-exit, .tour-center-step [data-action=exit], .tour [data-action=exit]'
  const DIALOG = 'dialog, .dialog, .application'
  const DIALOG_DECLINE = '[data-action=no], [data-action=cancel], .header-control[data-action=close]'

  /** True once the page has loaded and its world list is rendered. */
  function ready () {
    return document.readyState === 'complete' && document.querySelector(LIST) !== null
  }

  function worlds () {
    return Array.from(document.querySelectorAll(WORLD)).map((e) => ({
      id: e.dataset.packageId || '',
      title: ((e.querySelector(TITLE) || {}).textContent || '').trim()
    }))
  }

  /** Decline the telemetry prompt (the choice that shares nothing) and close tours. */
  function dismissOverlays () {
    let n = 0
    const no = document.querySelector(TELEMETRY_NO)
    if (no !== null) { no.click(); n++ }
    for (const b of Array.from(document.querySelectorAll(TOUR_EXIT))) { b.click(); n++ }
    return n
  }

  /** Click the world's own play control, so Foundry's client runs its checks. */
  function launch (id) {
    const li = Array.from(document.querySelectorAll(WORLD)).find((e) => e.dataset.packageId === id)
    const control = (li && li.querySelector(PLAY)) ||
      Array.from(document.querySelectorAll(PLAY_V10)).find((b) => b.dataset.world === id)
    if (!control) return false
    control.click()
    return true
  }

  function migrationDialog () {
    return Array.from(document.querySelectorAll(DIALOG))
      .find((d) => /migrat/i.test(d.textContent || '') && d.querySelector('[data-action=yes]') !== null)
  }

  /**
   * What the launch has come to, for polling: {kind:'migration'},
   * {kind:'error', message} (a new error toast), {kind:'active'} (the
   * server's status names the world), or false (still launching).
   */
  async function outcome (statusUrl, id, errorsBefore) {
    if (migrationDialog() !== undefined) return { kind: 'migration' }
    if (common.errorCount() > errorsBefore) return { kind: 'error', message: common.lastError(false) }
    const s = await common.status(statusUrl)
    if (s !== null && s.active === true && s.world === id) return { kind: 'active' }
    return false
  }

  /** Close the migration dialog without migrating. */
  function declineMigration () {
    const d = Array.from(document.querySelectorAll(DIALOG)).find((x) => /migrat/i.test(x.textContent || ''))
    const b = d === undefined ? null : d.querySelector(DIALOG_DECLINE)
    if (b === null) return false
    b.click()
    return true
  }

  return { ready, worlds, dismissOverlays, errorCount: common.errorCount, launch, outcome, declineMigration }
}
