// 1. Handshake: POST /session-handshake against GET /health of the same
// server (the limit of its HTTP stack), at 1, 10 and 100 concurrent clients;
// then what one start-session's decryption costs, end to end and alone,
// against what older implementations do (PEM per call, key pair per handshake).
import { constants, generateKeyPairSync, privateDecrypt, publicEncrypt } from 'node:crypto'
import { BENCH_KEY, forkChild, fmt, serviceEnv, log, median, p99, QUICK, ratio, table, type Stage } from './lib.ts'
import { load } from './loadgen.ts'

export interface HandshakeResult {
  http: Array<{ target: string, connections: number, rps: number, p50: number, p99: number, non2xx: number, requests: number, cpuUs: number }>
  decrypt: Array<{ what: string, n: number, p50: number, p99: number }>
  markdown: string
}

export async function benchHandshake (stage: Stage): Promise<HandshakeResult> {
  const foundryUrl = stage.running[0]!.standin.url
  const durationMs = QUICK ? 1500 : 3000
  const http: HandshakeResult['http'] = []
  const decrypt: HandshakeResult['decrypt'] = []
  // Logging as in production (info, to a discarded stdout): each handshake
  // writes two lines; /health is logged at warn only.
  const { child, ready } = await forkChild<{ port: number }>('service-proc.ts', serviceEnv())
  try {
    const targets = [
      { target: 'GET /health (reference)', method: 'GET' as const, path: '/health', headers: {} as Record<string, string> },
      { target: 'POST /session-handshake', method: 'POST' as const, path: '/session-handshake', headers: { 'x-api-key': BENCH_KEY, 'x-foundry-url': foundryUrl, 'x-username': 'Gamemaster 0' } }
    ]
    for (const connections of [1, 10, 50, 100]) {
      for (const t of targets) {
        log(`handshake: ${t.target}, ${connections} clients, ${durationMs} ms`)
        // The server's own CPU per request: what bounds its throughput when
        // it has a core to itself, and far less moved by a loaded host than
        // requests per second (the load generator shares the same cores).
        const cpu = async (): Promise<number> => { const c = await child.call<{ user: number, system: number }>({ type: 'cpu' }); return c.user + c.system }
        const cpu0 = await cpu()
        const r = await load({ port: ready.port, method: t.method, path: t.path, headers: t.headers, connections, durationMs, warmupMs: 500 })
        const cpuUs = (await cpu() - cpu0) / r.total
        http.push({ target: t.target, connections, rps: r.rps, p50: median(r.latencies), p99: p99(r.latencies), non2xx: r.non2xx, requests: r.requests, cpuUs })
      }
    }

    // One start-session up to its decryption, over HTTP: a correct
    // ciphertext with a wrong nonce is decrypted, then refused (401).
    const n = QUICK ? 100 : 300
    log(`handshake: ${n} start-sessions up to decryption`)
    const base = `http://127.0.0.1:${ready.port}`
    const prepared: Array<{ token: string, encryptedPassword: string }> = []
    for (let i = 0; i < n; i++) {
      const res = await fetch(`${base}/session-handshake`, { method: 'POST', headers: { 'x-api-key': BENCH_KEY, 'x-foundry-url': foundryUrl, 'x-username': 'Gamemaster 0' } })
      const h = await res.json() as { token: string, publicKey: string }
      const ct = publicEncrypt({ key: h.publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' },
        Buffer.from(JSON.stringify({ password: 'x', nonce: 'not-the-nonce' })))
      prepared.push({ token: h.token, encryptedPassword: ct.toString('base64') })
    }
    const e2e: number[] = []
    const hs: number[] = []
    for (const p of prepared) {
      let t = performance.now()
      const r = await fetch(`${base}/start-session`, {
        method: 'POST',
        headers: { 'x-api-key': BENCH_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ handshakeToken: p.token, encryptedPassword: p.encryptedPassword })
      })
      await r.arrayBuffer()
      e2e.push(performance.now() - t)
      if (r.status !== 401) log(`warning: start-session up to decryption answered ${r.status}, expected 401 NONCE_MISMATCH`)
      t = performance.now()
      const h = await fetch(`${base}/session-handshake`, { method: 'POST', headers: { 'x-api-key': BENCH_KEY, 'x-foundry-url': foundryUrl, 'x-username': 'Gamemaster 0' } })
      await h.arrayBuffer()
      hs.push(performance.now() - t)
    }
    decrypt.push(
      { what: 'POST /start-session through decryption (HTTP, sequential)', n, p50: median(e2e), p99: p99(e2e) },
      { what: 'POST /session-handshake (HTTP, sequential, same run)', n, p50: median(hs), p99: p99(hs) }
    )
  } finally {
    await child.close()
  }

  // The decryption alone, in this process.
  log('handshake: RSA decryption and key generation')
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' })
  const ct = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, Buffer.from('{"password":"x","nonce":"y"}'))
  const ct256 = publicEncrypt({ key: publicKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from('{"password":"x","nonce":"y"}'))
  const time = (n: number, fn: () => void): number[] => {
    const out: number[] = []
    for (let i = 0; i < n; i++) { const t = performance.now(); fn(); out.push(performance.now() - t) }
    return out
  }
  const m = QUICK ? 100 : 300
  const keyObj = time(m, () => privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, ct))
  const keyObj256 = time(m, () => {
    // The service tries SHA-1 first: a SHA-256 client costs two attempts.
    try { privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, ct256) } catch {}
    privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, ct256)
  })
  const pemEach = time(m, () => privateDecrypt({ key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha1' }, ct))
  const kg = QUICK ? 5 : 10
  const keygen = time(kg, () => generateKeyPairSync('rsa', { modulusLength: 2048 }))
  decrypt.push(
    { what: 'privateDecrypt, prepared KeyObject, SHA-1 (the service)', n: m, p50: median(keyObj), p99: p99(keyObj) },
    { what: 'privateDecrypt, prepared KeyObject, SHA-256 client (SHA-1 tried first)', n: m, p50: median(keyObj256), p99: p99(keyObj256) },
    { what: 'privateDecrypt, PEM parsed per call (reference)', n: m, p50: median(pemEach), p99: p99(pemEach) },
    { what: 'generateKeyPairSync RSA-2048 per handshake (older implementations)', n: kg, p50: median(keygen), p99: p99(keygen) }
  )

  const rows = [1, 10, 50, 100].map((c) => {
    const h = http.find((x) => x.connections === c && x.target.startsWith('POST'))!
    const r = http.find((x) => x.connections === c && x.target.startsWith('GET'))!
    return [String(c), fmt(r.rps, 0), fmt(h.rps, 0), ratio(h.rps, r.rps), fmt(r.cpuUs, 0), fmt(h.cpuUs, 0), ratio(r.cpuUs, h.cpuUs), fmt(r.p50, 2), fmt(h.p50, 2), fmt(r.p99, 2), fmt(h.p99, 2), String(h.non2xx + r.non2xx)]
  })
  const markdown = [
    table('1. Handshake throughput and latency (closed loop, keep-alive, loopback)',
      ['clients', '/health req/s', 'handshake req/s', 'ratio', '/health server CPU µs', 'handshake server CPU µs', 'CPU-bound ratio', '/health p50 ms', 'handshake p50 ms', '/health p99 ms', 'handshake p99 ms', 'non-2xx'], rows),
    '',
    table('1b. Decryption: one start-session',
      ['what', 'n', 'p50 ms', 'p99 ms'], decrypt.map((d) => [d.what, String(d.n), fmt(d.p50, 3), fmt(d.p99, 3)]))
  ].join('\n')
  return { http, decrypt, markdown }
}
