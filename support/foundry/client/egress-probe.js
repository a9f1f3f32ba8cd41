// A hostile page: once loaded, it tries every way a page has to reach
// another address (the canary, PROBE.canary, an http:// origin, and
// PROBE.udpPort on the canary's host over UDP), then tells its own origin
// it is done (POST <origin>/egress-probe/done with what each way reported).
// Served by the stand-in as /scripts/egress-probe.js (run on /game with
// the egressProbe option, or on the /egress-probe page). Not Foundry's.
/* global PROBE */
(function () {
  const canary = PROBE.canary
  const host = new URL(canary).hostname
  const out = {}
  const mark = (name, what) => { out[name] = what }
  const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
  const tries = []
  const attempt = (name, fn) => {
    tries.push(Promise.resolve().then(fn).then((v) => mark(name, v ?? 'sent'), (e) => mark(name, 'error: ' + (e && e.message))))
  }

  attempt('fetch', async () => { await fetch(canary + '/fetch', { mode: 'no-cors' }); return 'answered' })
  attempt('xhr', () => new Promise((resolve) => {
    const x = new XMLHttpRequest()
    x.open('GET', canary + '/xhr')
    x.onloadend = () => resolve('status ' + x.status)
    x.send()
  }))
  attempt('image', () => new Promise((resolve) => {
    const img = new Image()
    img.onload = () => resolve('loaded')
    img.onerror = () => resolve('error')
    img.src = canary + '/image.png'
  }))
  attempt('websocket', () => new Promise((resolve) => {
    const ws = new WebSocket(canary.replace(/^http/, 'ws') + '/websocket')
    ws.onopen = () => { resolve('open'); ws.close() }
    ws.onerror = () => resolve('error')
  }))
  attempt('eventsource', () => new Promise((resolve) => {
    const es = new EventSource(canary + '/eventsource')
    es.onopen = () => { resolve('open'); es.close() }
    es.onerror = () => { resolve('error'); es.close() }
  }))
  attempt('beacon', () => navigator.sendBeacon(canary + '/beacon', 'x') ? 'queued' : 'refused')
  attempt('iframe', () => new Promise((resolve) => {
    const f = document.createElement('iframe')
    f.onload = () => resolve('loaded')
    f.src = canary + '/iframe'
    document.body.appendChild(f)
    setTimeout(() => resolve('no load'), 3000)
  }))
  attempt('prefetch', () => {
    for (const rel of ['prefetch', 'preconnect', 'dns-prefetch']) {
      const l = document.createElement('link')
      l.rel = rel
      l.href = canary + '/' + rel
      document.head.appendChild(l)
    }
  })
  attempt('service-worker', async () => {
    if (!('serviceWorker' in navigator)) return 'no service workers'
    const reg = await navigator.serviceWorker.register(PROBE.swUrl)
    const sw = reg.installing || reg.waiting || reg.active
    if (sw !== null && sw.state !== 'activated') {
      await new Promise((resolve) => {
        sw.addEventListener('statechange', () => { if (sw.state === 'activated' || sw.state === 'redundant') resolve() })
        setTimeout(resolve, 4000)
      })
    }
    return 'registered, ' + (sw !== null ? sw.state : 'none')
  })
  attempt('webrtc', async () => {
    const pc = new RTCPeerConnection({ iceServers: [{ urls: 'stun:' + host + ':' + PROBE.udpPort }] })
    pc.createDataChannel('x')
    const candidates = []
    pc.onicecandidate = (e) => { if (e.candidate) candidates.push(e.candidate.type) }
    await pc.setLocalDescription(await pc.createOffer())
    await wait(2500)
    pc.close()
    return 'candidates: ' + candidates.join(',')
  })

  Promise.all(tries).then(async () => {
    await wait(500)
    await fetch(PROBE.done, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(out) })
  })
})()
