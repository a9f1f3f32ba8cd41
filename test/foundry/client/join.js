// Foundry stand-in: the /join page. The HTML is a shell; this script asks
// the server for the users over socket.io and builds the form late.
// CONFIG: { prefix, variant: 'v11'|'v12'|'v14', generation, version, joinRenderDelayMs }

const variant = CONFIG.variant
const game = window.game = {
  ready: false,
  view: 'join',
  version: CONFIG.version,
  release: CONFIG.release,
  users: new Collection(),
  world: null,
  data: null
}
const socket = connectSocket()
game.socket = socket

let rendered = false
let renderTimer = null

socket.on('session', (s) => {
  game.sessionId = s?.sessionId ?? null
  socket.emit('getJoinData', (data) => {
    if (!data || !Array.isArray(data.users)) return
    game.data = data
    game.world = data.world
    game.users = new Collection(data.users.map((u) => [u._id, makeUser(u)]))
    if (rendered) render()
    else if (renderTimer === null) renderTimer = setTimeout(() => { rendered = true; render() }, CONFIG.joinRenderDelayMs)
  })
})

socket.on('userActivity', (userId, activity) => {
  const u = game.users.get(userId)
  if (!u || !activity || !('active' in activity)) return
  u.active = !!activity.active
  if (rendered) render()
})

function userOptions (selected) {
  return '<option value=""></option>' + game.users.contents.map((u) =>
    `<option value="${esc(u.id)}"${u.active ? ' disabled' : ''}${(u.id === selected && !u.active) ? ' selected' : ''}>${esc(u.name)}</option>`
  ).join('')
}

const joinButton = '<button type="submit" name="join" data-action="join"><i class="fas fa-check"></i> Join Game Session</button>'
const passwordField = (id) => `<div class="form-group"><label>Password</label><input type="password" name="password"${id ? ` id="${id}"` : ''} placeholder="Password" autocomplete="current-password"></div>`
const adminField = () => `<input type="password" name="adminPassword"${CONFIG.generation >= 14 ? ' id="auth-password"' : ''} placeholder="Administrator Password" autocomplete="current-password">`
const shutdownButton = '<button type="submit" name="shutdown" data-action="shutdown"><i class="fas fa-home"></i> Return to Setup</button>'

function build (selected) {
  const el = document.createElement(variant === 'v11' ? 'form' : 'section')
  el.id = 'join-game'
  el.className = 'app window-app'
  if (CONFIG.joinForm === 'unknown') return buildUnknown(el)
  const title = esc(game.world?.title ?? '')
  if (variant === 'v11') {
    el.innerHTML = `<h2>Join Game Session</h2>
      <div class="form-group"><label>Select User</label><select name="userid">${userOptions(selected)}</select></div>
      ${passwordField()}
      ${joinButton}
      <h2>Return to Setup</h2>
      <div class="form-group">${adminField()}</div>
      ${shutdownButton}`
  } else if (variant === 'v12') {
    el.innerHTML = `<div class="join-world"><h2>${title}</h2></div>
      <form id="join-game-form" class="join-form">
        <h2>Join Game Session</h2>
        <div class="form-group"><label>Select User</label><select name="userid">${userOptions(selected)}</select></div>
        ${passwordField()}
        ${joinButton}
      </form>
      <form id="join-game-setup" class="setup-form">
        <h2>Return to Setup</h2>
        <div class="form-group">${adminField()}</div>
        ${shutdownButton}
      </form>`
  } else {
    const items = game.users.contents.map((u) =>
      `<li class="user-option${u.active ? ' active disabled' : ''}" data-user-id="${esc(u.id)}"${u.active ? ' aria-disabled="true"' : ''}>${esc(u.name)}</li>`).join('')
    el.innerHTML = `<div class="join-world"><h2>${title}</h2></div>
      <form id="join-game-form" class="join-form">
        <h2>Join Game Session</h2>
        <div class="form-group autocomplete"><label for="join-username">User</label>
          <input type="text" name="username" id="join-username" autocomplete="off" placeholder="User Name">
          <ul class="user-autocomplete" hidden>${items}</ul></div>
        ${passwordField('join-password')}
        ${joinButton}
      </form>
      <form id="join-game-setup" class="setup-form">
        <h2>Return to Setup</h2>
        <div class="form-group">${adminField()}</div>
        ${shutdownButton}
      </form>`
  }
  return el
}

function render () {
  const q = (s) => document.querySelector(s)
  const prev = {
    userid: q('#join-game select[name=userid]')?.value ?? '',
    username: q('#join-username')?.value ?? '',
    password: q('#join-game input[name=password]')?.value ?? '',
    adminPassword: q('#join-game input[name=adminPassword]')?.value ?? '',
    focus: document.activeElement?.closest?.('#join-game') ? document.activeElement.name : null
  }
  const el = build(prev.userid)
  q('#join-game').replaceWith(el)
  // Re-renders keep typed values but clear a user who became active.
  const pw = el.querySelector('input[name=password]'); if (pw) pw.value = prev.password
  const ap = el.querySelector('input[name=adminPassword]'); if (ap) ap.value = prev.adminPassword
  const un = el.querySelector('#join-username'); if (un) un.value = prev.username
  if (prev.focus) el.querySelector(`[name=${prev.focus}]`)?.focus()
  Hooks.callAll('renderJoinGameForm', el)
}

// v14 autocomplete list.
document.addEventListener('focusin', (ev) => {
  if (ev.target?.id === 'join-username') ev.target.parentElement.querySelector('.user-autocomplete')?.removeAttribute('hidden')
})
document.addEventListener('mousedown', (ev) => {
  const li = ev.target?.closest?.('.user-autocomplete li')
  if (!li) return
  ev.preventDefault()
  if (li.classList.contains('disabled')) return
  const input = document.getElementById('join-username')
  input.value = game.users.get(li.dataset.userId)?.name ?? ''
  li.parentElement.setAttribute('hidden', '')
})

function readForm (form) {
  const data = {}
  for (const el of form.elements) {
    if (!el.name || el.tagName === 'BUTTON' || el.type === 'submit') continue
    data[el.name] = el.value
  }
  return data
}

document.addEventListener('submit', async (ev) => {
  const form = ev.target
  if (!(form instanceof HTMLFormElement) || !form.closest('#join-game')) return
  ev.preventDefault()
  const button = ev.submitter ?? form.querySelector('button[type=submit]')
  const action = button?.name === 'shutdown' ? 'shutdown' : 'join'
  const data = readForm(form)
  data.action = action
  if (action === 'join') {
    if (variant === 'v14') {
      const name = String(data.username ?? '').trim()
      delete data.username
      const user = game.users.getName(name) ?? game.users.find((u) => u.name.toLowerCase() === name.toLowerCase())
      if (!user) { ui.notifications.error('JOIN.ErrorMustSelectUser'); return }
      data.userId = user.id
    } else if (!data.userid) {
      ui.notifications.error('JOIN.ErrorMustSelectUser')
      return
    }
  }
  if (button) button.disabled = true
  try {
    const response = await fetch(route('/join'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(data)
    })
    if (!response.ok) {
      ui.notifications.error(await response.text())
      return
    }
    const json = await response.json()
    ui.notifications.info(json.message)
    setTimeout(() => { window.location.href = json.redirect }, 500)
  } catch (err) {
    ui.notifications.error(String(err?.message ?? err))
  } finally {
    if (button) button.disabled = false
  }
})

// joinForm 'unknown': users arrive as usual, but the form picks the user with
// buttons, with neither select[name=userid] nor #join-username.
function buildUnknown (el) {
  const users = game.users.contents.map((u) =>
    `<button type="button" class="user-tile" data-user="${esc(u.id)}"${u.active ? ' disabled' : ''}>${esc(u.name)}</button>`).join('')
  el.innerHTML = `<div class="join-world"><h2>${esc(game.world?.title ?? '')}</h2></div>
    <form id="join-game-form" class="join-form">
      <h2>Join Game Session</h2>
      <div class="user-tiles">${users}</div>
      ${passwordField('join-password')}
      ${joinButton}
    </form>`
  return el
}
