// The console at /console: starts, watches and ends sessions from a browser
// through the typed client (./client.ts, compiled beside this file). No
// framework; the page's HTML is public/index.html, its style console.css.
import { ApiError, STAGE_TEXT as STAGES, createClient, type Client, type ListReplyT, type SessionEvent } from './client.ts'

const KEY_STORAGE = 'foundry-sessions.apiKey'
/** Session streams open at once: a browser allows 6 HTTP/1.1 connections per origin. */
const MAX_STREAMS = 4

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id)
  if (el === null) throw new Error(`#${id} missing`)
  return el as T
}
const form = $<HTMLFormElement>('start-form')
const input = (id: string): HTMLInputElement => $<HTMLInputElement>(id)
const startButton = $<HTMLButtonElement>('start')
const errorBox = $('error')
const resultBox = $('result')
const login = $('login')
const stages = $<HTMLOListElement>('stages')

function el<K extends keyof HTMLElementTagNameMap> (tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag)
  if (text !== undefined) e.textContent = text
  if (className !== undefined) e.className = className
  return e
}

function apiKey (): string { return input('api-key').value.trim() }

function client (): Client { return createClient({ server: '', apiKey: apiKey() }) }

function showError (err: unknown): void {
  login.hidden = false
  errorBox.replaceChildren()
  if (err instanceof ApiError) {
    errorBox.append(el('code', err.code), document.createTextNode(` ${err.message}`))
    if (err.stage !== undefined) errorBox.append(el('div', `Stage: ${STAGES[err.stage] ?? err.stage}${err.page !== undefined ? ` (page ${err.page})` : ''}`, 'hint'))
  } else {
    errorBox.append(el('code', 'ERROR'), document.createTextNode(` ${(err as Error).message}`))
  }
}

function time (iso: string | number): string {
  const d = new Date(iso)
  const today = d.toDateString() === new Date().toDateString()
  return today ? d.toLocaleTimeString() : d.toLocaleString()
}

// --- the login in progress -------------------------------------------------

function resetProgress (): void {
  stages.replaceChildren()
  login.hidden = false
}

function onLoginEvent (e: SessionEvent): void {
  if (e.type === 'stage') {
    for (const li of Array.from(stages.children)) { li.className = 'done' }
    const li = el('li', STAGES[e.stage] ?? e.stage, 'current')
    li.dataset.stage = e.stage
    stages.append(li)
  }
  scheduleRefresh()
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault()
  void startSession()
})

async function startSession (): Promise<void> {
  errorBox.replaceChildren()
  resultBox.replaceChildren()
  if (!window.isSecureContext || globalThis.crypto?.subtle === undefined) {
    showError(new Error('This page must be opened over HTTPS (or from localhost): the browser offers encryption (WebCrypto) only there.'))
    return
  }
  const missing = [['api-key', 'API key'], ['foundry-url', 'Foundry URL'], ['username', 'User name']]
    .filter(([id]) => input(id!).value.trim() === '').map(([, name]) => name)
  if (missing.length > 0) {
    showError(new Error(`Fill in: ${missing.join(', ')}.`))
    input(missing[0] === 'API key' ? 'api-key' : missing[0] === 'Foundry URL' ? 'foundry-url' : 'username').focus()
    return
  }
  startButton.disabled = true
  startButton.textContent = 'Starting…'
  resetProgress()
  try {
    const reply = await client().start({
      foundryUrl: input('foundry-url').value.trim(),
      username: input('username').value.trim(),
      worldName: input('world').value.trim(),
      password: input('password').value,
      adminPassword: input('admin-password').value,
      adminUsername: input('admin-username').value.trim(),
      connectionToken: input('connection-token').value,
      webhookUrl: input('webhook-url').value.trim(),
      onEvent: onLoginEvent
    })
    for (const li of Array.from(stages.children)) { li.className = 'done' }
    resultBox.textContent = `${reply.message}.${reply.clientId !== '' ? ` Module client id: ${reply.clientId}.` : ''}`
    if (reply.webhookSecret !== undefined) {
      // Shown once: the service keeps it for signing only.
      const secret = el('div', 'Webhook signing secret (shown once; verify webhook-signature with it): ')
      secret.append(el('code', reply.webhookSecret, 'secret'))
      resultBox.append(secret)
    }
    // The secrets are no longer needed in the page.
    for (const id of ['password', 'admin-password', 'connection-token', 'webhook-url']) input(id).value = ''
  } catch (err) {
    showError(err)
  } finally {
    startButton.disabled = false
    startButton.textContent = 'Start session'
    await refresh()
  }
}

// --- the sessions of the key, live ----------------------------------------

const streams = new Map<string, AbortController>()
let refreshTimer: ReturnType<typeof setTimeout> | undefined
let refreshing: Promise<void> | null = null

function scheduleRefresh (delayMs = 100): void {
  if (refreshTimer !== undefined) clearTimeout(refreshTimer)
  refreshTimer = setTimeout(() => { void refresh() }, delayMs)
}

let queued: Promise<void> | null = null

/**
 * Load the list now. A load already in flight may have read the list before
 * what this caller saw change (a start that just failed, an end): the caller
 * gets one more load after it, shared with every caller meanwhile.
 */
async function refresh (): Promise<void> {
  if (refreshing !== null) {
    queued ??= refreshing.then(async () => { queued = null; await refresh() })
    return await queued
  }
  const run = load()
  refreshing = run
  try { await run } finally { if (refreshing === run) refreshing = null }
}

async function load (): Promise<void> {
  try {
    if (apiKey() === '') {
      render(null)
      return
    }
    render(await client().list())
  } catch (err) {
    render(null, err)
  } finally {
    // A slow refresh in the background; events drive the fast ones.
    scheduleRefresh(15_000)
  }
}

/** Sessions whose stream failed, and when: not followed again for a while. */
const failedStreams = new Map<string, number>()

function follow (ids: string[]): void {
  for (const [id, stop] of streams) {
    if (!ids.includes(id)) { stop.abort(); streams.delete(id) }
  }
  const now = Date.now()
  for (const id of ids) {
    if (streams.has(id) || streams.size >= MAX_STREAMS || now - (failedStreams.get(id) ?? 0) < 10_000) continue
    const stop = new AbortController()
    streams.set(id, stop)
    void (async () => {
      try {
        // Each event changes what the list shows: fetch it again. The first
        // one is where the session is now: news only when it differs from
        // what was last shown of the session (a stream opened again after a
        // drop catches up); otherwise it is the baseline.
        let first = true
        for await (const e of client().events(id, { signal: stop.signal })) {
          if (!first) logEvent(e)
          else if (e.type === 'status') {
            const last = lastLogged.get(e.sessionId)
            if (last?.status !== undefined) logEvent(e)
            else lastLogged.set(e.sessionId, { ...last, status: e.status })
          }
          first = false
          scheduleRefresh()
        }
      } catch {
        failedStreams.set(id, Date.now())
      }
      if (streams.get(id) === stop) streams.delete(id)
      if (!stop.signal.aborted) scheduleRefresh()
    })()
  }
}

// --- events: what webhooks tell of, as it happens ---------------------------

const eventList = $<HTMLOListElement>('events')
/** World and user of each session listed, for the event lines. */
const names = new Map<string, string>()
/** The last status and module state logged per session: only changes are news. */
const lastLogged = new Map<string, { status?: string, module?: boolean, deferred?: boolean }>()
const MAX_EVENTS = 50

function logEvent (e: SessionEvent): void {
  const last = lastLogged.get(e.sessionId) ?? {}
  let text: string
  let kind: string
  if (e.type === 'status') {
    if (e.status === last.status) return
    const recovered = e.status === 'active' && last.status === 'reconnecting'
    text = `${recovered ? 'recovered' : e.status}: ${e.reason}`
    kind = `status-${e.status}`
    last.status = e.status
  } else if (e.type === 'module') {
    if (e.connected === last.module) return
    if (!e.connected && last.deferred !== true) {
      // A page that is gone takes its module along, and its status (which
      // follows at once) says so already: the module's loss is news only
      // if the session is still active a moment later.
      last.deferred = true
      lastLogged.set(e.sessionId, last)
      setTimeout(() => {
        const now = lastLogged.get(e.sessionId)
        if (now === undefined) return
        now.deferred = false
        if (now.status === 'active' || now.status === undefined) logEvent(e)
        else now.module = false
      }, 1000)
      return
    }
    text = e.connected ? 'module connected' : `module offline: ${e.reason}`
    kind = e.connected ? 'module-yes' : 'module-no'
    last.module = e.connected
  } else {
    return
  }
  lastLogged.set(e.sessionId, last)
  const li = el('li')
  li.dataset.sessionId = e.sessionId
  const when = el('time', time(e.at))
  when.dateTime = e.at
  li.append(when, el('span', `${names.get(e.sessionId) ?? e.sessionId} `), el('span', text, kind))
  eventList.prepend(li)
  while (eventList.children.length > MAX_EVENTS) eventList.lastElementChild?.remove()
}

function cell (text: string, label: string, className?: string): HTMLTableCellElement {
  const td = el('td', text, className)
  td.dataset.label = label
  return td
}

function actions (): HTMLTableCellElement {
  return el('td', undefined, 'actions')
}

function endButton (label: string, name: string, id: string): HTMLButtonElement {
  const b = el('button', label, 'secondary')
  b.type = 'button'
  b.setAttribute('aria-label', `${label} ${name}`)
  b.addEventListener('click', () => {
    b.disabled = true
    void client().end(id).then(() => { errorBox.replaceChildren() }, showError).finally(() => { void refresh() })
  })
  return b
}

function render (list: ListReplyT | null, err?: unknown): void {
  const table = $<HTMLTableElement>('sessions')
  const ended = $<HTMLTableElement>('ended')
  const note = $('sessions-note')
  const tbody = table.tBodies[0]!
  const endedBody = ended.tBodies[0]!
  if (list === null) {
    table.hidden = true
    ended.hidden = true
    $('ended-heading').hidden = true
    note.hidden = false
    note.textContent = err instanceof ApiError
      ? `${err.code}: ${err.message}`
      : err !== undefined ? `The sessions cannot be shown: ${(err as Error).message}` : 'Enter the API key to see its sessions.'
    follow([])
    return
  }
  const rows: HTMLTableRowElement[] = []
  for (const s of list.pendingSessions) {
    const tr = el('tr')
    tr.dataset.sessionId = s.id
    const world = s.worldName !== '' ? s.worldName : '(running world)'
    names.set(s.id, `${world} (${s.username})`)
    tr.append(cell(world, 'World'), cell(s.username, 'User'), cell(`starting: ${STAGES[s.stage]?.toLowerCase() ?? s.stage}`, 'Status', 'status-starting'),
      cell('–', 'Module'), cell(time(s.startTime), 'Since'))
    const act = actions()
    act.append(endButton('Cancel', `${world} ${s.username}`, s.id))
    tr.append(act)
    rows.push(tr)
  }
  for (const s of list.activeSessions) {
    const tr = el('tr')
    tr.dataset.sessionId = s.id
    const world = s.worldTitle !== '' ? s.worldTitle : s.worldName
    names.set(s.id, `${world} (${s.username})`)
    const status = cell(s.status, 'Status', `status-${s.status}`)
    if (s.status !== 'active') status.append(el('div', s.statusReason, 'hint'))
    // The module's relay connection as the session follows it now.
    const connected = s.module.connected
    const module = cell(connected ? 'connected' : 'not connected', 'Module', connected ? 'module-yes' : 'module-no')
    module.append(el('div', `since ${time(s.module.since)}`, 'hint'))
    if (!connected) module.append(el('div', s.module.reason, 'hint'))
    tr.append(cell(world, 'World'), cell(s.username, 'User'), status, module,
      cell(time(s.statusChangedAt), 'Since'))
    const act = actions()
    act.append(endButton('End', `${world} ${s.username}`, s.id))
    tr.append(act)
    rows.push(tr)
  }
  tbody.replaceChildren(...rows)
  table.hidden = rows.length === 0
  note.hidden = rows.length > 0
  note.textContent = 'No running sessions for this API key.'

  const endedRows = list.endedSessions.map((s) => {
    const tr = el('tr')
    tr.dataset.sessionId = s.id
    const world = s.worldTitle !== '' ? s.worldTitle : s.worldName !== '' ? s.worldName : '(running world)'
    names.set(s.id, `${world} (${s.username})`)
    tr.append(cell(world, 'World'), cell(s.username, 'User'), cell(s.status, 'Status', `status-${s.status}`), cell(s.statusReason, 'Reason', 'reason'), cell(time(s.endedAt), 'Ended'))
    const act = actions()
    if (s.status === 'failed') act.append(endButton('Remove', `${world} ${s.username}`, s.id))
    tr.append(act)
    return tr
  })
  endedBody.replaceChildren(...endedRows)
  ended.hidden = endedRows.length === 0
  $('ended-heading').hidden = endedRows.length === 0
  // A followed session that the list shows over: its end is news, told from
  // the list. Its stream stops below, and may not have delivered its last
  // event yet (the end-session answer and the list can come first); if it
  // did, logEvent has it already and tells nothing twice.
  for (const s of list.endedSessions) {
    const last = lastLogged.get(s.id)?.status
    if (last !== undefined && last !== 'ended' && last !== 'failed') {
      logEvent({ type: 'status', sessionId: s.id, at: s.endedAt, status: s.status, reason: s.statusReason })
    }
  }
  follow([...list.pendingSessions, ...list.activeSessions].map((s) => s.id))
}

// --- the API key: this tab only -------------------------------------------

const keyInput = input('api-key')
keyInput.value = sessionStorage.getItem(KEY_STORAGE) ?? ''
let keyTimer: ReturnType<typeof setTimeout> | undefined
function keyChanged (): void {
  clearTimeout(keyTimer)
  if (apiKey() === '') sessionStorage.removeItem(KEY_STORAGE)
  else sessionStorage.setItem(KEY_STORAGE, apiKey())
  for (const stop of streams.values()) stop.abort()
  streams.clear()
  void refresh()
}
keyInput.addEventListener('change', keyChanged)
keyInput.addEventListener('input', () => {
  clearTimeout(keyTimer)
  keyTimer = setTimeout(keyChanged, 400)
})
$('refresh').addEventListener('click', () => { void refresh() })
void refresh()
