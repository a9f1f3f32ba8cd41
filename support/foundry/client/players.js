// Foundry stand-in: the v14 /players gate shown on a world's first launch.
// "Save and Continue" posts JSON to /players, then the page goes to /join.
document.addEventListener('submit', async (ev) => {
  const form = ev.target
  if (form?.id !== 'players-config') return
  ev.preventDefault()
  const response = await fetch(route('/players'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ action: 'save' }) })
  if (!response.ok) {
    let msg = 'ERROR.InvalidAdminKey'
    try { msg = (await response.json()).error ?? msg } catch {}
    ui.notifications.error(msg)
    return
  }
  window.location.href = route('/join')
})
