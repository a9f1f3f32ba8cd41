// Scripts installed in every document of a session page, before Foundry's
// own scripts run (page.evaluateOnNewDocument).
//
// Plain JavaScript sent as source (see common.js for why).
(common) => {
  /**
   * Report every WebSocket of the document through the DevTools binding
   * `binding` (lib/browser/websockets.ts), as JSON [event, id, url, code]:
   * 'created' when the page opens one, 'open' when its upgrade is accepted,
   * 'auth' when the relay answers {"type":"auth-success"} (module 3.x),
   * 'close' with its close code (which the DevTools protocol does not carry,
   * and the relay's codes say why it refused the module: 4004, 1008…).
   * Watched here, in the page, and not through the DevTools Network domain:
   * with it on, Chromium sends every frame of every socket to Node, Foundry's
   * world data (tens of MB in a big world) and every ping included. Payloads
   * never leave the page: a frame is only looked at for that one word. A
   * document that goes takes its sockets with it without a close event: the
   * watcher sees its context destroyed.
   */
  function watchSockets (binding) {
    const Native = window.WebSocket
    const send = globalThis[binding]
    if (typeof Native !== 'function' || typeof send !== 'function') return false
    // Ids unique across the page's documents: a prefix per document.
    const prefix = Math.random().toString(36).slice(2) + ':'
    let n = 0
    const report = (event, id, url, code) => { try { send(JSON.stringify([event, id, url, code])) } catch (e) {} }
    class Watched extends Native {
      constructor (url, protocols) {
        super(url, protocols)
        const id = prefix + (n++)
        report('created', id, this.url, 0)
        this.addEventListener('open', () => { report('open', id, this.url, 0) })
        const onMessage = (ev) => {
          const data = ev.data
          // Only a small JSON text can be the relay's auth answer.
          if (typeof data !== 'string' || data.length > 512 || data.indexOf('auth-success') === -1) return
          try { if (JSON.parse(data).type !== 'auth-success') return } catch (e) { return }
          this.removeEventListener('message', onMessage)
          report('auth', id, this.url, 0)
        }
        this.addEventListener('message', onMessage)
        this.addEventListener('close', (ev) => {
          this.removeEventListener('message', onMessage)
          report('close', id, this.url, ev.code)
        })
      }
    }
    window.WebSocket = Watched
    return true
  }

  /** Foundry's client setting core.noCanvas (localStorage, JSON-encoded): no WebGL, no scene. */
  function setNoCanvas () {
    // Opaque origins (about:blank) have no localStorage: ignore them.
    try { window.localStorage.setItem('core.noCanvas', 'true'); return true } catch (e) { return false }
  }

  /** Module 3.x: seed its connection token, on Foundry's origin only, unless it has one. */
  function seedConnectionToken (origin, key, token) {
    try {
      if (location.origin !== origin || localStorage.getItem(key) !== null) return false
      localStorage.setItem(key, JSON.stringify(token))
      return true
    } catch (e) { return false }
  }

  return { watchSockets, setNoCanvas, seedConnectionToken }
}
