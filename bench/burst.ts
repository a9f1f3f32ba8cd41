// 4. Burst: 20 start-sessions at once, handshakes done beforehand. With the
// default caps the service runs MAX_CONCURRENT_LOGINS logins and answers the
// rest with a fast 429; with the caps raised it runs all 20 at once.
import { prepareStart, type StartOutcome } from './client.ts'
import { forkChild, fmt, FULL, log, median, serviceEnv, table, type Stage } from './lib.ts'

export interface BurstRun {
  name: string
  ok: number
  rejected: number
  failed: string[]
  /** From firing the burst to the last 200, ms. */
  lastSuccessMs: number
  medianSuccessMs: number
  /** Slowest 429, ms. */
  max429Ms: number
}
export interface BurstResult { runs: BurstRun[], markdown: string }

const N = 20

async function burst (stage: Stage, name: string, env: Record<string, string>): Promise<BurstRun> {
  const { child, ready } = await forkChild<{ port: number }>('service-proc.ts', serviceEnv(env))
  try {
    const starts = []
    for (let i = 0; i < N; i++) starts.push(await prepareStart(ready.port, stage.running[i]!))
    log(`burst: ${name}: ${N} start-sessions at once`)
    const t0 = performance.now()
    const done: Array<StartOutcome & { at: number }> = await Promise.all(starts.map(async (s) => {
      const r = await s()
      return { ...r, at: performance.now() - t0 }
    }))
    const ok = done.filter((d) => d.status === 200)
    const rejected = done.filter((d) => d.status === 429)
    return {
      name,
      ok: ok.length,
      rejected: rejected.length,
      failed: done.filter((d) => d.status !== 200 && d.status !== 429).map((d) => `${d.status} ${d.code ?? ''}`),
      lastSuccessMs: Math.max(...ok.map((d) => d.at)),
      medianSuccessMs: median(ok.map((d) => d.at)),
      max429Ms: rejected.length === 0 ? NaN : Math.max(...rejected.map((d) => d.at))
    }
  } finally {
    await child.close()
  }
}

export async function benchBurst (stage: Stage): Promise<BurstResult> {
  const runs = [await burst(stage, 'default caps (MAX_CONCURRENT_LOGINS=4, MAX_SESSIONS_PER_KEY=10)', {})]
  // 20 heavy logins at once on 2 cores take about a minute: BENCH_FULL=1 only.
  if (FULL) {
    runs.push(await burst(stage, `caps raised to admit all (MAX_CONCURRENT_LOGINS=${N}, MAX_SESSIONS_PER_KEY=${N})`, {
      MAX_CONCURRENT_LOGINS: String(N), MAX_SESSIONS_PER_KEY: String(N)
    }))
  }
  const markdown = table(`4. Burst: ${N} start-sessions at once (heavy /game)`,
    ['configuration', '200', '429', 'other', 'slowest 429 ms', 'median 200 ms', 'last 200 ms'],
    runs.map((r) => [r.name, String(r.ok), String(r.rejected), r.failed.length === 0 ? '0' : r.failed.join(', '), fmt(r.max429Ms, 1), fmt(r.medianSuccessMs, 0), fmt(r.lastSuccessMs, 0)]))
  return { runs, markdown }
}
