// The egress probe (test-only; no Foundry has it): the script a hostile
// page runs to reach a canary address every way a page can, its service
// worker, and a page of its own. See client/egress-probe.js.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { esc, page } from './html.ts'
import type { Ctx } from './state.ts'

const clientDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'client')
let files: { probe: string, sw: string } | null = null
function read (): { probe: string, sw: string } {
  files ??= {
    probe: readFileSync(join(clientDir, 'egress-probe.js'), 'utf8'),
    sw: readFileSync(join(clientDir, 'egress-sw.js'), 'utf8')
  }
  return files
}

/** The canary and UDP port: the stand-in's egressProbe option, or the query (?canary=…&udp=…). */
function target (ctx: Ctx, q: URLSearchParams): { canary: string, udpPort: number } {
  const canary = q.get('canary') ?? ctx.opts.egressProbe?.canary ?? 'http://127.0.0.2:9'
  const udpPort = Number(q.get('udp') ?? ctx.opts.egressProbe?.udpPort ?? 9)
  return { canary: canary.replace(/\/+$/, ''), udpPort }
}

export function egressProbeScript (ctx: Ctx, q: URLSearchParams): string {
  const t = target(ctx, q)
  const probe = {
    ...t,
    swUrl: ctx.route('/egress-sw.js') + '?canary=' + encodeURIComponent(t.canary),
    done: ctx.route('/egress-probe/done')
  }
  return `(function (PROBE) {\n${read().probe}\n})(${JSON.stringify(probe)});\n`
}

export function egressServiceWorker (q: URLSearchParams): string {
  const canary = (q.get('canary') ?? 'http://127.0.0.2:9').replace(/\/+$/, '')
  return `const CANARY = ${JSON.stringify(canary)};\n${read().sw}`
}

export function egressProbePage (ctx: Ctx, q: URLSearchParams): string {
  const script = ctx.route('/scripts/egress-probe.js') + '?' + q.toString()
  return page(ctx, 'Egress probe', 'egress-probe', `<p>probe</p><script defer src="${esc(script)}"></script>`)
}
