// Screening of Chromium/V8 flags, one at a time, quicker than `npm run bench
// -- tuning` and less moved by a loaded host: one heavy-/game login in a bare
// browser launched like the service's (lib/browser/chromium.ts) plus FLAGS, then the
// session renderer's PSS and its page's live JS heap after a full GC, the
// login's wall and CPU time, and 8 module requests (round trip, CPU).
//   FLAGS='--js-flags=--max-semi-space-size=1' node bench/flag-screen.ts
// Prints one JSON line. docs/benchmarks.md has the flags tried this way.
import { bareSession } from './bare-login.ts'
import { startStage, tree, sleep, median, cpuSeconds } from './lib.ts'
import { moduleRequest } from './module-request.ts'
import { readFileSync } from 'node:fs'
const stage = await startStage(1)
const extra = (process.env.FLAGS ?? '').split(' ').filter(Boolean)
const f = stage.running[0]!
const { browser: b, page, browserPid: bpid, clientId, loginMs, loginCpuS: loginCpu } = await bareSession({ url: f.standin.url, username: f.user.name, password: f.user.password }, extra)
const r = { clientId }
const cdp = await page.createCDPSession()
await cdp.send('HeapProfiler.collectGarbage')
await sleep(2000)
const u = await cdp.send('Runtime.getHeapUsage') as any
await cdp.detach()
let rss = 0
for (const p of tree(bpid)) {
  if (!readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--type=renderer')) continue
  rss += Number(/Pss:\s+(\d+)/.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'))?.[1]) / 1024
}
const c1 = cpuSeconds(bpid)
const ms: number[] = []
for (let i = 0; i < 8; i++) ms.push((await moduleRequest(stage.relay, r.clientId)).ms)
const modCpu = (cpuSeconds(bpid) - c1) * 1000 / 8
console.log(JSON.stringify({ flags: extra.join(' '), rendererPss: +rss.toFixed(1), heapUsed: +(u.usedSize / 2 ** 20).toFixed(1), loginMs: Math.round(loginMs), loginCpu, moduleP50: +median(ms).toFixed(1), modCpu }))
await b.close(); await stage.close(); process.exit(0)
