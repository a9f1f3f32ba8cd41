// Foundry stand-in: code shared by every page. The server wraps each page
// script as `(function (CONFIG) { <common.js> <page.js> })(<json>)`, so
// nothing here leaks a stand-in-only global; only Foundry's own globals
// (game, Hooks, ui, canvas) are assigned to window.
'use strict'

const route = (p) => CONFIG.prefix + p

function readCookie (name) {
  const m = document.cookie.match(new RegExp('(?:^|;\\s*)' + name + '=([^;]*)'))
  return m ? decodeURIComponent(m[1]) : null
}

function esc (s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c])
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// foundry.utils.Collection: a Map whose iteration yields values.
class Collection extends Map {
  get contents () { return Array.from(super.values()) }
  * [Symbol.iterator] () { yield * super.values() }
  filter (fn) { return this.contents.filter(fn) }
  find (fn) { return this.contents.find(fn) }
  map (fn) { return this.contents.map(fn) }
  some (fn) { return this.contents.some(fn) }
  forEach (fn) { for (const v of super.values()) fn(v) }
  getName (name) { return this.find((d) => d.name === name) }
}

function makeUser (d) {
  return {
    _id: d._id,
    id: d._id,
    name: d.name,
    role: d.role,
    active: !!d.active,
    get isGM () { return this.role >= 3 },
    get isSelf () { return window.game?.userId === this.id },
    hasRole (r) { return this.role >= r }
  }
}

const Hooks = window.Hooks ?? {
  _hooks: {},
  on (name, fn) { (this._hooks[name] ??= []).push({ fn, once: false }); return fn },
  once (name, fn) { (this._hooks[name] ??= []).push({ fn, once: true }); return fn },
  off (name, fn) { this._hooks[name] = (this._hooks[name] ?? []).filter((h) => h.fn !== fn) },
  callAll (name, ...args) {
    for (const h of (this._hooks[name] ?? []).slice()) {
      if (h.once) this.off(name, h.fn)
      try { h.fn(...args) } catch (err) { console.error(`Error in hook ${name}`, err) }
    }
    return true
  },
  call (name, ...args) {
    for (const h of (this._hooks[name] ?? []).slice()) {
      if (h.once) this.off(name, h.fn)
      try { if (h.fn(...args) === false) return false } catch (err) { console.error(`Error in hook ${name}`, err) }
    }
    return true
  }
}
window.Hooks = Hooks

const ui = window.ui = window.ui ?? {}
ui.notifications = ui.notifications ?? {
  notify (message, type = 'info', { permanent = false } = {}) {
    let ol = document.getElementById('notifications')
    if (!ol) {
      ol = document.createElement('ol')
      ol.id = 'notifications'
      document.body.appendChild(ol)
    }
    const li = document.createElement('li')
    li.className = `notification ${type}${permanent ? ' permanent' : ''}`
    li.textContent = message
    ol.appendChild(li)
    if (!permanent) setTimeout(() => li.remove(), 5000)
    return li
  },
  info (m, o) { return this.notify(m, 'info', o) },
  warn (m, o) { return this.notify(m, 'warning', o) },
  error (m, o) { return this.notify(m, 'error', o) }
}

// Foundry: websocket only, 10 reconnection attempts 500 ms apart, the
// session id read from document.cookie.
function connectSocket () {
  return window.io(window.location.origin, {
    path: route('/socket.io'),
    transports: ['websocket'],
    upgrade: false,
    reconnection: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 500,
    reconnectionAttempts: 10,
    query: { session: readCookie('session') ?? '' }
  })
}

function overlay (id, inner) {
  const div = document.createElement('div')
  div.id = id
  div.className = 'app-overlay'
  div.innerHTML = inner
  document.body.appendChild(div)
  return div
}
