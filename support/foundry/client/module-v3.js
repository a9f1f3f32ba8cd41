// Foundry stand-in: REST API module 3.x (to 3.4.1). Connects from any
// role-4 GM that holds a connection token (client setting, JSON in
// localStorage) in a paired world (world setting clientId). Auth is the
// first message, never the query string.
// CONFIG: { pingIntervalMs, reconnectMaxAttempts (real: 20), reconnectBaseMs (real: 1000) }
(() => {
  const MODULE_ID = 'foundry-rest-api'
  const TOKEN_KEY = `${MODULE_ID}.connectionToken`

  class RelayConnection {
    constructor (url, clientId, token) {
      this.url = url
      this.clientId = clientId
      this.token = token
      this.socket = null
      this.attempts = 0
      this.maxAttempts = CONFIG.reconnectMaxAttempts ?? 20
      this.baseDelay = CONFIG.reconnectBaseMs ?? 1000
      this.timer = null
      this.pingTimer = null
      this.stopped = false
      this.authed = false
      this.waitingForUserDisconnect = false
      Hooks.on('userConnected', (user, connected) => {
        if (this.authed) this.sendPlayerList()
        if (!connected && this.waitingForUserDisconnect && !this.socket) this.connect()
      })
    }

    connect () {
      if (this.stopped || this.socket) return
      if (this.timer !== null) { clearTimeout(this.timer); this.timer = null }
      const base = this.url.replace(/\/+$/, '').replace(/\/relay$/, '')
      const u = new URL(`${base}/relay`)
      u.searchParams.set('id', this.clientId)
      u.searchParams.set('worldId', game.world.id)
      u.searchParams.set('worldTitle', game.world.title)
      u.searchParams.set('foundryVersion', game.version)
      u.searchParams.set('systemId', game.system.id)
      u.searchParams.set('systemTitle', game.system.title)
      u.searchParams.set('systemVersion', game.system.version)
      u.searchParams.set('customName', game.settings.get(MODULE_ID, 'customName') ?? '')
      const ws = this.socket = new WebSocket(u.toString())
      this.authed = false
      const timeout = setTimeout(() => { if (ws.readyState === WebSocket.CONNECTING) ws.close() }, 5000)
      ws.addEventListener('open', () => {
        clearTimeout(timeout)
        ws.send(JSON.stringify({ type: 'auth', token: this.token }))
      })
      ws.addEventListener('message', (ev) => {
        let data
        try { data = JSON.parse(ev.data) } catch { return }
        if (data?.type === 'auth-success') {
          this.authed = true
          this.attempts = 0
          this.waitingForUserDisconnect = false
          Hooks.callAll(`${MODULE_ID}.relayConnected`)
          this.send({ type: 'ping' })
          this.pingTimer = setInterval(() => this.send({ type: 'ping' }), CONFIG.pingIntervalMs)
          this.sendPlayerList()
        } else if (data?.requestId && data.type && data.type !== 'pong') {
          this.send(answerRequest(data))
        }
      })
      ws.addEventListener('close', (ev) => {
        clearTimeout(timeout)
        if (this.socket === ws) this.socket = null
        this.authed = false
        if (this.pingTimer !== null) { clearInterval(this.pingTimer); this.pingTimer = null }
        this.onClose(ev.code)
      })
    }

    onClose (code) {
      if (this.stopped) return
      if (code === 1000) { this.stopped = true; return }
      if (code === 1008) {
        // Bad token: permanent. Clear it and ask the GM to pair again.
        this.stopped = true
        window.localStorage.setItem(TOKEN_KEY, JSON.stringify(''))
        showPairingDialog()
        return
      }
      if (code === 4001 || code === 4002) { this.stopped = true; return }
      if (code === 4004) {
        this.waitingForUserDisconnect = true
        this.timer = setTimeout(() => { this.timer = null; this.connect() }, 30000)
        return
      }
      this.attempts++
      if (this.attempts > this.maxAttempts) { this.stopped = true; return }
      const delay = Math.min(30000, this.baseDelay * Math.pow(2, this.attempts - 1))
      this.timer = setTimeout(() => { this.timer = null; this.connect() }, delay)
    }

    send (data) {
      if (this.socket?.readyState !== WebSocket.OPEN) return false
      this.socket.send(JSON.stringify(data))
      return true
    }

    sendPlayerList () {
      this.send({ type: 'player-list', users: game.users.map((u) => ({ id: u.id, name: u.name, role: u.role, active: u.active })) })
    }
  }

  function showPairingDialog () {
    const div = document.createElement('div')
    div.id = 'foundry-rest-api-pairing'
    div.className = 'app-overlay'
    document.body.appendChild(div)
    div.innerHTML = (`<dialog open class="application dialog"><header class="window-header"><h4>Foundry REST API: pair this world</h4></header>
      <section class="window-content"><p>The relay rejected this world's connection token. Pair the world again.</p></section></dialog>`)
  }

  Hooks.once('init', () => {
    game.modules.get(MODULE_ID).api = { getConnection: () => game.modules.get(MODULE_ID).relay ?? null }
  })

  Hooks.once('ready', () => {
    setTimeout(() => {
      const url = game.settings.get(MODULE_ID, 'wsRelayUrl')
      const clientId = game.settings.get(MODULE_ID, 'clientId')
      const token = game.settings.get(MODULE_ID, 'connectionToken')
      if (!url || !clientId || typeof token !== 'string' || token === '') return
      if (!game.user?.isGM || game.user.role !== 4) return
      const mod = game.modules.get(MODULE_ID)
      if (mod.relay) return
      mod.relay = new RelayConnection(url, clientId, token)
      mod.relay.connect()
    }, 1000)
  })
})()
