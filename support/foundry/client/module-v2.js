// Foundry stand-in: REST API module 2.x (ThreeHats/foundryvtt-rest-api
// 1.5.0–2.1.3). Connects only from the primary GM: the active role-4 user
// with the lowest id. Query-string auth, pings on an interval.
// CONFIG: { pingIntervalMs, reconnectMaxAttempts (real: 20), reconnectBaseMs (real: 1000) }
(() => {
  const MODULE_ID = 'foundry-rest-api'
  const Normal = 1000

  function isPrimaryGM () {
    if (game.user?.role !== 4) return false
    const gms = game.users.filter((u) => u.role === 4 && u.active)
    if (gms.length === 0) return false
    const sorted = [...gms].sort((a, b) => (a.id || '').localeCompare(b.id || ''))
    return sorted[0]?.id === game.user.id
  }

  class WebSocketManager {
    constructor (url, token) {
      this.url = url
      this.token = token
      this.socket = null
      this.reconnectTimer = null
      this.reconnectAttempts = 0
      this.maxReconnectAttempts = CONFIG.reconnectMaxAttempts ?? 20
      this.pingInterval = null
      this.isConnecting = false
      this.clientId = `foundry-${game.user.id}`
      this.isPrimaryGM = isPrimaryGM()
      Hooks.on('userConnected', () => this.reevaluate())
    }

    reevaluate () {
      const was = this.isPrimaryGM
      this.isPrimaryGM = isPrimaryGM()
      if (was === this.isPrimaryGM) return
      if (this.isPrimaryGM && !this.isConnected()) this.connect()
      if (!this.isPrimaryGM && this.socket) this.disconnect()
    }

    isConnected () { return this.socket !== null && this.socket.readyState === WebSocket.OPEN }

    connect () {
      if (!game.user?.isGM || !this.isPrimaryGM || this.isConnecting) return
      if (this.socket && (this.socket.readyState === WebSocket.CONNECTING || this.socket.readyState === WebSocket.OPEN)) return
      this.isConnecting = true
      try {
        const u = new URL(this.url)
        u.searchParams.set('id', this.clientId)
        u.searchParams.set('token', this.token)
        u.searchParams.set('worldId', game.world.id)
        u.searchParams.set('worldTitle', game.world.title)
        u.searchParams.set('foundryVersion', game.version)
        u.searchParams.set('systemId', game.system.id)
        u.searchParams.set('systemTitle', game.system.title)
        u.searchParams.set('systemVersion', game.system.version)
        u.searchParams.set('customName', game.settings.get(MODULE_ID, 'customName') ?? '')
        const ws = this.socket = new WebSocket(u.toString())
        const timeout = setTimeout(() => {
          if (ws.readyState === WebSocket.CONNECTING) {
            ws.close()
            if (this.socket === ws) this.socket = null
            this.isConnecting = false
            this.scheduleReconnect()
          }
        }, 5000)
        ws.addEventListener('open', () => {
          clearTimeout(timeout)
          this.isConnecting = false
          this.reconnectAttempts = 0
          this.send({ type: 'ping' })
          this.pingInterval = setInterval(() => { if (this.isConnected()) this.send({ type: 'ping' }) }, CONFIG.pingIntervalMs)
        })
        ws.addEventListener('close', (ev) => {
          clearTimeout(timeout)
          if (this.socket === ws) this.socket = null
          this.isConnecting = false
          if (this.pingInterval !== null) { clearInterval(this.pingInterval); this.pingInterval = null }
          if (ev.code !== Normal && this.isPrimaryGM) this.scheduleReconnect()
        })
        ws.addEventListener('error', () => { clearTimeout(timeout); this.isConnecting = false })
        ws.addEventListener('message', (ev) => this.onMessage(ev))
      } catch (err) {
        console.error(err)
        this.isConnecting = false
        this.scheduleReconnect()
      }
    }

    disconnect () {
      if (this.socket) { this.socket.close(Normal, 'Disconnecting'); this.socket = null }
      if (this.reconnectTimer !== null) { clearTimeout(this.reconnectTimer); this.reconnectTimer = null }
      if (this.pingInterval !== null) { clearInterval(this.pingInterval); this.pingInterval = null }
      this.reconnectAttempts = 0
      this.isConnecting = false
    }

    send (data) {
      if (!this.isConnected()) return false
      this.socket.send(JSON.stringify(data))
      return true
    }

    onMessage (ev) {
      let data
      try { data = JSON.parse(ev.data) } catch { return }
      if (data?.requestId && data.type && data.type !== 'pong') {
        this.send(answerRequest(data))
      }
    }

    scheduleReconnect () {
      if (this.reconnectTimer !== null) return
      this.reconnectAttempts++
      if (this.reconnectAttempts > this.maxReconnectAttempts) return
      const delay = Math.min(30000, Math.pow(2, this.reconnectAttempts) * (CONFIG.reconnectBaseMs ?? 1000))
      this.reconnectTimer = setTimeout(() => { this.reconnectTimer = null; this.connect() }, delay)
    }
  }

  Hooks.once('init', () => {
    game.modules.get(MODULE_ID).api = { getWebSocketManager: () => game.modules.get(MODULE_ID).socketManager ?? null }
  })

  Hooks.once('ready', () => {
    setTimeout(() => {
      const url = game.settings.get(MODULE_ID, 'wsRelayUrl')
      const apiKey = game.settings.get(MODULE_ID, 'apiKey')
      if (!url) return
      if (!game.user?.isGM) return
      const mod = game.modules.get(MODULE_ID)
      if (mod.socketManager) return
      mod.socketManager = new WebSocketManager(url, apiKey)
      mod.socketManager.connect()
    }, 1000)
  })
})()
