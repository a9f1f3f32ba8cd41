// Issue 12's goals, judged from this run's own numbers (side-by-side ratios
// only): met, missed with the reason the same run shows, or not measured by
// the parts that were run. Printed last by `npm run bench`.
import { BEFORE, type DensityIdle, type DensityMemory } from './density.js'
import type { HandshakeResult } from './handshake.js'
import { fmt, table } from './lib.js'

export interface RunResults {
  handshake?: Pick<HandshakeResult, 'http'>
  density?: { memory: DensityMemory[], idle: DensityIdle[] }
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length)
const verdict = (ok: boolean): string => ok ? '**met**' : '**missed**'
const NOT_RUN = (part: string): string[] => ['—', `not measured in this run (\`npm run bench -- ${part}\`)`]

export function goalsTable (r: RunResults): string {
  const rows: string[][] = []

  const heavy = r.density?.memory.find((m) => m.page === 'heavy')
  if (heavy === undefined) {
    rows.push(['memory per additional session, heavy page ≤ 0.6× of before', ...NOT_RUN('density')])
  } else {
    const x = heavy.perSessionMB / BEFORE.perSessionMB.heavy
    const floor = heavy.jsHeapMB / BEFORE.perSessionMB.heavy
    rows.push(['memory per additional session, heavy page ≤ 0.6× of before',
      `${fmt(heavy.perSessionMB)} MB vs ${fmt(BEFORE.perSessionMB.heavy)} MB = ${x.toFixed(2)}×`,
      x <= 0.6
        ? verdict(true)
        : `${verdict(false)}: the page's own live JS heap after a full GC is ${fmt(heavy.jsHeapMB)} MB = ${floor.toFixed(2)}× by itself, the floor no browser setting removes`])
  }

  for (const level of r.density?.idle ?? []) {
    const service = mean(level.serviceCpuPct)
    const bare = mean(level.bareCpuPct)
    const x = service / bare
    const node = level.serviceKinds.node - level.bareKinds.node
    rows.push([`idle CPU ≤ 1.1× a bare browser, ${level.sessions} sessions`,
      `${fmt(service, 2)} % vs ${fmt(bare, 2)} % of a core = ${x.toFixed(2)}× (load ${level.load.map((l) => fmt(l)).join('→')})`,
      x <= 1.1
        ? verdict(true)
        : `${verdict(false)}: Chromium's processes cost ${fmt(level.serviceKinds.renderer + level.serviceKinds.browser + level.serviceKinds.other, 2)} vs ${fmt(level.bareKinds.renderer + level.bareKinds.browser + level.bareKinds.other, 2)} %; the service's Node process ${node >= 0 ? '+' : ''}${fmt(node, 2)} % over the bare script's`])
  }
  if (r.density === undefined || r.density.idle.length === 0) rows.push(['idle CPU ≤ 1.1× a bare browser, 10 and 50 sessions', ...NOT_RUN('density')])

  const at100 = (prefix: string): HandshakeResult['http'][number] | undefined => r.handshake?.http.find((h) => h.connections === 100 && h.target.startsWith(prefix))
  const hs = at100('POST')
  const health = at100('GET')
  if (hs === undefined || health === undefined) {
    rows.push(['handshake p99 < 10 ms at 100 clients', ...NOT_RUN('handshake')])
    rows.push(['handshake throughput ≥ 0.8× `/health`', ...NOT_RUN('handshake')])
  } else {
    rows.push(['handshake p99 < 10 ms at 100 clients',
      `${fmt(hs.p99, 2)} ms (\`/health\` ${fmt(health.p99, 2)} ms)`,
      hs.p99 < 10
        ? verdict(true)
        : health.p99 >= 10
          ? `${verdict(false)}: \`/health\`, the cheapest route, misses it too on this host: 100 clients in a closed loop need > 10,000 answers/s`
          : `${verdict(false)}: a handshake costs ${fmt(hs.cpuUs, 0)} µs of server CPU against ${fmt(health.cpuUs, 0)} µs for \`/health\``])
    const x = hs.rps / health.rps
    rows.push(['handshake throughput ≥ 0.8× `/health`',
      `${fmt(hs.rps, 0)} vs ${fmt(health.rps, 0)} req/s = ${x.toFixed(2)}× (server CPU per request ${(health.cpuUs / hs.cpuUs).toFixed(2)}×)`,
      x >= 0.8
        ? verdict(true)
        : `${verdict(false)}: a handshake does what \`/health\` does not (API-key digest and throttle, header schema, URL policy, storing the handshake, a 4× larger body): ${fmt(hs.cpuUs, 0)} vs ${fmt(health.cpuUs, 0)} µs of server CPU`])
  }

  const fits = r.density?.memory.filter((m) => m.fits.length > 0) ?? []
  rows.push(['density table (1 GB and 2 GB machines)',
    fits.length > 0 ? fits.map((m) => `${m.page} page: ${m.fits.join(' / ')} sessions`).join('; ') : '—',
    fits.length > 0 ? '**done** (table 5)' : 'not measured in this run (`npm run bench -- density`)'])

  return table('Goals of issue 12, judged from this run', ['goal', 'this run', 'verdict'], rows)
}
