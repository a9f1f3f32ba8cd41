// Scripts installed in every document of a session page, before Foundry's
// own scripts run (page.evaluateOnNewDocument).
//
// Plain JavaScript sent as source (see common.js for why).
(common) => {
  /**
   * Report every WebSocket's close code through the `binding` puppeteer
   * exposed: the DevTools protocol does not carry close codes, and the
   * relay's codes say why it refused the module (4004, 1008…).
   */
  function reportCloseCodes (binding) {
    const Native = window.WebSocket
    const send = globalThis[binding]
    if (typeof Native !== 'function' || typeof send !== 'function') return false
    class Watched extends Native {
      constructor (url, protocols) {
        super(url, protocols)
        this.addEventListener('close', (ev) => { try { send(this.url, ev.code) } catch (e) {} })
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

  return { reportCloseCodes, setNoCanvas, seedConnectionToken }
}
