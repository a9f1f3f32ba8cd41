// Process trees from /proc, for the tests and the benchmarks: what Chromium
// started, and whether it is gone.
import { readFileSync, readdirSync } from 'node:fs'

/** Live (non-zombie) processes and their parents. */
function parents (): Map<number, number> {
  const parent = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // Fields after the command (which may hold spaces) start after ')'.
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (rest[0] === 'Z') continue
      parent.set(Number(name), Number(rest[1]))
    } catch {}
  }
  return parent
}

/** `pid` (if alive) and every live process below it. */
export function processTree (pid: number): number[] {
  const parent = parents()
  const out = [pid]
  for (let i = 0; i < out.length; i++) {
    for (const [child, p] of parent) if (p === out[i]) out.push(child)
  }
  return out.filter((p) => p === pid ? parent.has(pid) : true)
}

export function alive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch { return false }
}
