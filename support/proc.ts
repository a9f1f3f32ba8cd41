// Process trees from /proc, for the tests and the benchmarks: what Chromium
// started, and whether it is gone.
import { readFileSync, readdirSync, readlinkSync } from 'node:fs'

/** One process from /proc/<pid>/stat. */
export interface ProcStat {
  pid: number
  ppid: number
  zombie: boolean
  /** user + system CPU so far, in clock ticks (1/100 s). */
  cpuTicks: number
  /** When it started, in ticks since boot: with the pid, a process (pids are reused). */
  start: string
}

/** Every process on the host, as /proc shows it now. */
export function processes (): ProcStat[] {
  const out: ProcStat[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      // Fields after the command (which may hold spaces) start after ')'.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      out.push({ pid: Number(name), ppid: Number(f[1]), zombie: f[0] === 'Z', cpuTicks: Number(f[11]) + Number(f[12]), start: f[19] ?? '' })
    } catch {}
  }
  return out
}

/** Live (non-zombie) processes and their parents. */
function parents (): Map<number, number> {
  const parent = new Map<number, number>()
  for (const p of processes()) if (!p.zombie) parent.set(p.pid, p.ppid)
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

/**
 * A process's command line, its arguments joined by spaces ('' once it is
 * gone). Chromium rewrites its children's command lines into one string, so
 * their arguments cannot be split apart again anyway.
 */
export function commandLine (pid: number): string {
  try { return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() } catch { return '' }
}

/** The profile directory (--user-data-dir) a Chromium process runs with, if any. */
export function chromiumProfile (pid: number): string | undefined {
  return /--user-data-dir=(\S+)/.exec(commandLine(pid))?.[1]
}

export function alive (pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z'
  } catch { return false }
}

/** TCP ports the given processes listen on (IPv4 and IPv6), from /proc/net and their open sockets. */
export function listeningPorts (pids: number[]): number[] {
  const sockets = new Set<string>()
  for (const pid of pids) {
    let fds: string[] = []
    try { fds = readdirSync(`/proc/${pid}/fd`) } catch { continue }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))
        if (m !== null) sockets.add(m[1]!)
      } catch {}
    }
  }
  const ports = new Set<number>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[] = []
    try { lines = readFileSync(table, 'utf8').trim().split('\n').slice(1) } catch { continue }
    for (const line of lines) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/)
      if (f[3] === '0A' && sockets.has(f[9] ?? '')) ports.add(parseInt(f[1]!.split(':')[1]!, 16))
    }
  }
  return [...ports]
}
