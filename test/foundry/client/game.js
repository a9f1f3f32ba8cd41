// Foundry stand-in: the /game page. Boot order as in Foundry:
// socket 'session' → 'world' data → init → setup → (canvas) → game.ready → 'ready' hook.
// CONFIG: { prefix, generation, version, release, gameReadyDelayMs, canvasDelayMs, skeletonStatic }

const game = window.game = { ready: false, view: 'game', version: CONFIG.version, release: CONFIG.release }
const canvas = window.canvas = { ready: false }

function readClientSetting (key, fallback) {
  const raw = window.localStorage.getItem(key)
  if (raw === null) return fallback
  try { return JSON.parse(raw) } catch { return fallback }
}
const noCanvas = readClientSetting('core.noCanvas', false) === true

const socket = connectSocket()
game.socket = socket
let booted = false
let disconnectedAt = null
let shuttingDown = false

socket.on('session', (s) => {
  game.sessionId = s?.sessionId ?? null
  if (!s?.userId) { window.location.href = route('/join'); return }
  if (booted) return
  booted = true
  game.userId = s.userId
  socket.emit('world', (data) => {
    if (!data) { window.location.href = route('/join'); return }
    boot(data).catch((err) => console.error('Game boot failed', err))
  })
})

function makeSettings (worldSettings) {
  const world = new Map(worldSettings.map((s) => [s.key, s.value]))
  return {
    get (ns, key) {
      const k = `${ns}.${key}`
      if (world.has(k)) { try { return JSON.parse(world.get(k)) } catch { return undefined } }
      return readClientSetting(k, undefined)
    },
    async set (ns, key, value) {
      const k = `${ns}.${key}`
      if (world.has(k)) world.set(k, JSON.stringify(value))
      else window.localStorage.setItem(k, JSON.stringify(value))
      return value
    },
    register () {}
  }
}

function loadScript (src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement('script')
    s.src = src
    s.onload = resolve
    s.onerror = () => reject(new Error(`Failed to load ${src}`))
    document.head.appendChild(s)
  })
}

function insertSkeleton () {
  if (document.getElementById('interface')) return
  const div = document.createElement('div')
  div.innerHTML = CONFIG.skeletonHtml
  document.body.prepend(...div.childNodes)
}

async function boot (data) {
  game.data = data
  game.world = { id: data.world.id, title: data.world.title }
  game.system = { id: data.system.id, title: data.system.title, version: data.system.version }
  game.version = data.version
  game.release = data.release
  game.users = new Collection(data.users.map((u) => [u._id, makeUser(u)]))
  game.user = game.users.get(data.userId)
  game.modules = new Collection(data.modules.map((m) => [m.id, { ...m }]))
  game.settings = makeSettings(data.settings)
  game.canvas = canvas
  for (const m of data.modules) {
    if (!m.active) continue
    for (const src of m.scripts ?? []) await loadScript(src)
  }
  const started = performance.now()
  Hooks.callAll('init')
  Hooks.callAll('i18nInit')
  Hooks.callAll('setup')
  if (!CONFIG.skeletonStatic) insertSkeleton()
  if (CONFIG.heavy) await heavyWork(CONFIG.heavy)
  const rest = CONFIG.gameReadyDelayMs - (performance.now() - started)
  if (rest > 0) await sleep(rest)
  if (!noCanvas) {
    await sleep(CONFIG.canvasDelayMs)
    // Foundry's canvas is WebGL (PIXI): without a context it cannot start.
    // The game still gets ready, the canvas does not.
    const gl = webgl()
    if (gl === null) {
      ui.notifications.error('ERROR.NoWebGL', { permanent: true })
      socket.emit('canvasState', { ready: false, renderer: null })
    } else {
      if (CONFIG.heavy) heavyCanvas(CONFIG.heavy)
      canvas.ready = true
      Hooks.callAll('canvasReady', canvas)
      socket.emit('canvasState', { ready: true, renderer: String(gl.getParameter(gl.RENDERER) ?? '') })
    }
  }
  game.ready = true
  Hooks.callAll('ready')
}

socket.on('userActivity', (userId, activity) => {
  const u = game.users?.get(userId)
  if (!u || !activity || !('active' in activity)) return
  const was = u.active
  u.active = !!activity.active
  if (was !== u.active) Hooks.callAll('userConnected', u, u.active)
})

socket.on('shutdown', () => {
  shuttingDown = true
  ui.notifications.warn('The game world is shutting down and you will be returned to the server homepage.', { permanent: true })
  setTimeout(() => { window.location.href = route('/') }, 1000)
})

socket.on('disconnect', () => {
  if (disconnectedAt === null) disconnectedAt = Date.now()
  if (!shuttingDown) ui.notifications.error('You have lost connection to the server, attempting to re-establish.')
})

socket.io.on('reconnect', () => {
  const downFor = disconnectedAt === null ? 0 : Date.now() - disconnectedAt
  disconnectedAt = null
  ui.notifications.info('Server connectivity re-established.')
  if (downFor >= 5000) window.location.reload()
})

socket.io.on('reconnect_failed', () => {
  ui.notifications.error('Server connectivity could not be re-established.', { permanent: true })
  window.location.href = route('/no')
})

socket.on('reload', () => window.location.reload())

// heavyGame: CPU and memory cost comparable (in shape, not size) to a real
// /game boot: parse a large script, decode images, and with the canvas on,
// drive WebGL for a while.
async function heavyWork (h) {
  for (const src of h.scripts ?? []) await loadScript(src)
  await Promise.all((h.images ?? []).map((src) => new Promise((resolve) => {
    const img = new Image()
    img.onload = img.onerror = () => resolve()
    img.src = src
    document.getElementById('ui-left')?.appendChild(img)
  })))
  if (h.audio) { try { const a = new Audio(h.audio); a.preload = 'auto'; a.load() } catch {} }
}

function webgl () {
  let board = document.getElementById('board')
  if (!board) {
    board = document.createElement('canvas')
    board.id = 'board'
    document.body.appendChild(board)
  }
  try { return board.getContext('webgl2') ?? board.getContext('webgl') ?? null } catch { return null }
}

function heavyCanvas (h) {
  const board = document.getElementById('board')
  const gl = board?.getContext?.('webgl2') ?? board?.getContext?.('webgl')
  if (!gl) return
  board.width = 1920
  board.height = 1080
  const until = performance.now() + (h.canvasMs ?? 300)
  while (performance.now() < until) {
    gl.clearColor(Math.random(), Math.random(), Math.random(), 1)
    gl.clear(gl.COLOR_BUFFER_BIT)
    gl.finish()
  }
}
