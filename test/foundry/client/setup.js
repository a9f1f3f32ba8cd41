// Foundry stand-in: the /setup page. The world list is rendered by script
// after the setup data arrives over socket.io.
// CONFIG: { prefix, generation, version, setupRenderDelayMs }

const game = window.game = { ready: false, view: 'setup', version: CONFIG.version, release: CONFIG.release, data: null }
const socket = connectSocket()
game.socket = socket
let rendered = false

socket.on('session', () => {
  socket.emit('getSetupData', (data) => {
    if (!data || rendered) return
    game.data = data
    rendered = true
    setTimeout(() => render(data), CONFIG.setupRenderDelayMs)
  })
})

function render (data) {
  const list = data.worlds.map((w) => `
    <li class="package world${w.locked ? ' locked' : ''}" data-package-id="${esc(w.id)}" data-package-type="world">
      <div class="package-thumbnail"></div>
      <h3 class="package-title">${esc(w.title)}</h3>
      <div class="package-system">${esc(w.system.title)} ${esc(w.system.version)}</div>
      <div class="package-controls">
        ${w.locked ? '<i class="fas fa-lock" data-tooltip="Locked"></i>' : ''}
        <a class="control play" data-action="worldLaunch" data-tooltip="Launch World"><i class="fas fa-play"></i> Launch</a>
      </div>
    </li>`).join('')
  document.getElementById('setup-packages').innerHTML = `
    <nav class="tabs"><a class="item active" data-tab="worlds">Worlds</a><a class="item" data-tab="systems">Game Systems</a><a class="item" data-tab="modules">Add-on Modules</a></nav>
    <section id="worlds" class="tab active" data-tab="worlds"><ul id="worlds-list" class="package-list">${list}</ul></section>`
  if (data.tourPrompt && !tourDone()) showTour()
  if (data.telemetryPrompt) showTelemetry()
  Hooks.callAll('renderSetupPackages')
}

// First-load tour (v12+ "backups" tour): a click-swallowing overlay closed by
// its exit control or Escape. Progress lives in the client setting core.tourProgress.
function tourDone () {
  try { return JSON.parse(window.localStorage.getItem('core.tourProgress') ?? '{}')?.core?.backupsOverview !== undefined } catch { return false }
}
function showTour () {
  const el = overlay('tour-overlay', `<div class="tour-center-step tour" role="dialog">
      <header><h3>Backups</h3><a class="step-button" data-action="exit" aria-label="Exit tour"><i class="fas fa-times"></i> Exit</a></header>
      <section class="step-content"><p>Foundry Virtual Tabletop can now create backups of your worlds.</p></section>
      <footer><button type="button" class="tour-exit" data-action="exit">End Tour</button><button type="button" data-action="next">Next</button></footer>
    </div>`)
  el.classList.add('tour-overlay')
  const close = () => {
    el.remove()
    document.removeEventListener('keydown', onKey)
    let progress = {}
    try { progress = JSON.parse(window.localStorage.getItem('core.tourProgress') ?? '{}') ?? {} } catch {}
    progress.core = { ...(progress.core ?? {}), backupsOverview: -1 }
    window.localStorage.setItem('core.tourProgress', JSON.stringify(progress))
  }
  const onKey = (ev) => { if (ev.key === 'Escape') close() }
  document.addEventListener('keydown', onKey)
  el.addEventListener('click', (ev) => { if (ev.target.closest('[data-action=exit]')) close() })
}

function showTelemetry () {
  const el = overlay('telemetry-overlay', `<dialog open id="telemetry" class="application dialog">
      <header class="window-header"><h4>Share Usage Data</h4></header>
      <section class="window-content"><p>Would you like to share anonymous usage data with Foundry Gaming?</p></section>
      <footer class="form-footer"><button type="button" data-action="yes">Yes</button><button type="button" data-action="no">No</button></footer>
    </dialog>`)
  el.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-action]')
    if (!b) return
    el.remove()
    await post({ action: 'telemetry', share: b.dataset.action === 'yes' })
  })
}

function showMigration (world) {
  const el = overlay('migration-overlay', `<dialog open id="world-migration" class="application dialog">
      <header class="window-header"><h4>World Data Migration</h4></header>
      <section class="window-content"><p>The World <strong>${esc(world.title)}</strong> requires a data migration. Migration is irreversible: back up your data first.</p></section>
      <footer class="form-footer"><button type="button" data-action="yes">Begin Migration</button><button type="button" data-action="no">Cancel</button></footer>
    </dialog>`)
  el.addEventListener('click', async (ev) => {
    const b = ev.target.closest('button[data-action]')
    if (!b) return
    el.remove()
    if (b.dataset.action === 'yes') await launch(world.id, true)
  })
}

async function post (body) {
  return await fetch(route('/setup'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) })
}

async function launch (id, migrate = false) {
  const body = { action: 'launchWorld', world: id }
  if (migrate) body.migrate = true
  const response = await post(body)
  if (!response.ok) {
    let msg = 'SETUP.WorldLaunchFailure'
    try { msg = (await response.json()).error ?? msg } catch {}
    ui.notifications.error(msg)
    return
  }
  showProgress('connectWorld', 0)
}

function showProgress (step, pct) {
  let bar = document.getElementById('loading')
  if (!bar) {
    bar = document.createElement('div')
    bar.id = 'loading'
    bar.innerHTML = '<label class="loading-label"></label><div class="loading-bar" style="width:0%"></div>'
    document.body.appendChild(bar)
  }
  bar.querySelector('label').textContent = step
  bar.querySelector('.loading-bar').style.width = `${pct}%`
}

// Delegated click handler, as in Foundry's SetupPackages.
document.addEventListener('click', (ev) => {
  const a = ev.target.closest?.('#worlds-list [data-action=worldLaunch]')
  if (!a) return
  ev.preventDefault()
  // A modal overlay (telemetry prompt, tour, migration dialog) takes the
  // clicks meant for the list beneath it; a script's click() is refused too,
  // so a launch happens only once the overlay was dealt with.
  if (document.querySelector('#telemetry-overlay, .tour-overlay, #migration-overlay') !== null) return
  const id = a.closest('li.package').dataset.packageId
  const world = game.data.worlds.find((w) => w.id === id)
  if (world?.needsMigration) showMigration(world)
  else launch(id)
})

socket.on('progress', (p) => {
  if (p?.action !== 'launchWorld') return
  if (p.step === 'error') {
    document.getElementById('loading')?.remove()
    ui.notifications.error(`${p.message}: ${p.error}`)
    return
  }
  showProgress(p.step, p.pct)
  if (p.step === 'complete') window.location.href = route('/game')
})
