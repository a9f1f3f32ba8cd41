// Where a heavy session's renderer memory goes (issue 21), and what a
// headless Gamemaster can give up once its game is ready. One heavy-/game
// login in a bare browser launched like the service's (lib/browser/chromium.ts
// + FLAGS), page set up like the service's; then, after a full GC, a reading:
//   /proc      the renderer's PSS (anonymous, file, shmem)
//   V8         heap used vs committed (Runtime.getHeapUsage), Performance.getMetrics
//   allocators a memory-infra dump (Tracing.requestMemoryDump): malloc,
//              partition_alloc (Blink's non-GC objects, strings, buffers),
//              blink_gc (Oilpan: DOM), v8 by space, web_cache, …
// and 8 module requests (round trip, renderer CPU). Then each post-ready
// lever in LEVERS (comma-separated, applied one after the other, cumulative),
// each followed by the same reading:
//   pressure   Memory.simulatePressureNotification critical
//   nocache    Network.setCacheDisabled + Network.clearBrowserCache
//   purge      Memory.forciblyPurgeJavaScriptMemory (Chromium's OOM
//              intervention: it ends the page's JavaScript, so the module's
//              relay connection is gone: measured, never a setting)
//   wait30     30 s idle (what V8's memory reducer does alone)
//   FLAGS='--disable-features=BackForwardCache' LEVERS=pressure,nocache node bench/renderer-memory.ts
// Prints one JSON object per reading.
import { readFileSync } from 'node:fs'
import type { Browser, CDPSession, Page } from 'puppeteer-core'
import { bareSession } from './bare-login.ts'
import { cpuSeconds, median, sleep, startStage, tree } from './lib.ts'
import { moduleRequest } from './module-request.ts'

const stage = await startStage(1, 0)
const extra = (process.env.FLAGS ?? '').split(' ').filter(Boolean)
const levers = (process.env.LEVERS ?? '').split(',').filter(Boolean)
const f = stage.running[0]!
const { browser: b, page, browserPid: bpid, clientId, loginMs, loginCpuS: loginCpu } = await bareSession({ url: f.standin.url, username: f.user.name, password: f.user.password }, extra)
const r = { clientId }
const cdp = await page.createCDPSession()
await cdp.send('Performance.enable')

function renderers (): number[] {
  return tree(bpid).filter((p) => { try { return readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('--type=renderer') } catch { return false } })
}

function rollup (pid: number): Record<string, number> {
  const out: Record<string, number> = {}
  for (const m of readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').matchAll(/^(\w+):\s+(\d+) kB/gm)) out[m[1]!] = +(Number(m[2]) / 1024).toFixed(1)
  return out
}

const MB = (x: number): number => +(x / 2 ** 20).toFixed(1)

/** A memory-infra dump of every process; the renderer's allocators (size attribute, MB). */
async function allocators (browser: Browser, rendererPid: number): Promise<Record<string, number>> {
  const s = await browser.target().createCDPSession()
  const chunks: unknown[] = []
  s.on('Tracing.dataCollected', (e: { value: unknown[] }) => { chunks.push(...e.value) })
  const done = new Promise<void>((resolve) => s.once('Tracing.tracingComplete', () => { resolve() }))
  await s.send('Tracing.start', {
    traceConfig: { includedCategories: ['disabled-by-default-memory-infra'], excludedCategories: ['*'], memoryDumpConfig: { triggers: [] } } as never,
    transferMode: 'ReportEvents'
  })
  const d = await s.send('Tracing.requestMemoryDump', { deterministic: true, levelOfDetail: 'detailed' })
  await s.send('Tracing.end')
  await done
  await s.detach()
  const out: Record<string, number> = { dumpOk: d.success ? 1 : 0 }
  for (const ev of chunks as Array<{ ph: string, pid: number, args?: { dumps?: { allocators?: Record<string, { attrs?: Record<string, { value: string, units: string }> }> } } }>) {
    if (ev.ph !== 'v' || ev.pid !== rendererPid) continue
    const all = ev.args?.dumps?.allocators ?? {}
    for (const [name, a] of Object.entries(all)) {
      const depth = name.split('/').length
      const size = a.attrs?.size
      if (size === undefined || size.units !== 'bytes') continue
      // Top level, and V8's spaces, partition_alloc's partitions, malloc's split.
      if (depth === 1 || /^v8\/main\/heap\/[a-z_]+$/.test(name) || /^partition_alloc\/partitions\/[a-z_]+$/.test(name) || /^malloc\/[a-z_]+$/.test(name)) {
        out[name] = MB(parseInt(size.value, 16))
      }
      if (/^v8\/main\/heap$/.test(name) && a.attrs?.allocated_objects_size !== undefined) out['v8/main/heap:allocated'] = MB(parseInt(a.attrs.allocated_objects_size.value, 16))
    }
  }
  return out
}

async function reading (label: string, c: CDPSession, p: Page): Promise<void> {
  await c.send('HeapProfiler.collectGarbage')
  await sleep(2000)
  const [rid] = renderers()
  const heap = await c.send('Runtime.getHeapUsage') as { usedSize: number, totalSize: number, embedderHeapUsedSize?: number, backingStorageSize?: number }
  const metrics = Object.fromEntries((await c.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]))
  const dom = await c.send('Memory.getDOMCounters')
  const alloc = await allocators(b, rid!)
  const proc = rollup(rid!)
  const c1 = cpuSeconds(bpid)
  const ms: number[] = []
  for (let i = 0; i < 8; i++) ms.push((await moduleRequest(stage.relay, r.clientId)).ms)
  const modCpu = (cpuSeconds(bpid) - c1) * 1000 / 8
  console.log(JSON.stringify({
    label,
    flags: extra.join(' '),
    pss: proc.Pss,
    pssAnon: proc.Pss_Anon,
    pssFile: proc.Pss_File,
    pssShmem: proc.Pss_Shmem,
    rss: proc.Rss,
    heapUsed: MB(heap.usedSize),
    heapTotal: MB(heap.totalSize),
    embedder: MB(heap.embedderHeapUsedSize ?? 0),
    backing: MB(heap.backingStorageSize ?? 0),
    jsHeapTotal: MB(metrics.JSHeapTotalSize ?? 0),
    nodes: metrics.Nodes,
    documents: metrics.Documents,
    listeners: dom.jsEventListeners,
    alloc,
    loginMs: Math.round(loginMs),
    loginCpu,
    moduleP50: +median(ms).toFixed(1),
    modCpu
  }))
  void p
}

// The module's first requests build state it keeps (~10 MB here): warm it
// up so that every reading below sees the same page.
for (let i = 0; i < 8; i++) await moduleRequest(stage.relay, r.clientId)
await reading('ready', cdp, page)
for (const lever of levers) {
  if (lever === 'pressure') await cdp.send('Memory.simulatePressureNotification', { level: 'critical' })
  else if (lever === 'nocache') { await cdp.send('Network.setCacheDisabled', { cacheDisabled: true }); await cdp.send('Network.clearBrowserCache') } else if (lever === 'purge') await cdp.send('Memory.forciblyPurgeJavaScriptMemory')
  else if (lever === 'wait30') await sleep(30_000)
  else throw new Error(`unknown lever ${lever}`)
  await reading(lever, cdp, page)
}
await cdp.detach()
await b.close(); await stage.close(); process.exit(0)
