// Where Chromium comes from and how it is started. No Fastify here: the
// browser pool, the tests and the benchmarks all launch through this file.
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer, { TimeoutError, type Browser, type LaunchOptions } from 'puppeteer-core'

// Flags from @sparticuz/chromium that this service must not use:
// --single-process kills the browser when a second context opens a page;
// --no-zygote (see UNSANDBOXED below);
// --disable-web-security and --allow-running-insecure-content would let a
// hostile Foundry URL read other origins from inside the session's page.
const DROPPED = new Set([
  '--single-process',
  '--no-zygote',
  '--disable-web-security',
  '--allow-running-insecure-content'
])

// Flags that switch the sandbox off, kept only when running as root, where
// Chromium refuses the sandbox. @sparticuz/chromium also passes --no-zygote
// (Lambda's need): it is dropped everywhere, root included. Without the
// zygote every renderer, one per session, is a fresh exec of the whole
// binary; with it a renderer is forked from a warm process, sharing its pages
// (the Docker image, not root, always ran this way).
const UNSANDBOXED = new Set(['--no-sandbox'])

// Flags added to every launch. The network here is closed and a headless GM
// never needs Google's background services; without these, Chromium spends
// time on lookups that can never succeed.
//
// --disable-gpu-compositing: a headless GM shows its frames to no one, yet
// with GPU compositing (SwiftShader, a GPU emulated on the CPU, in the
// browser process here) every page paid for it: ~1 CPU-s for a browser's
// first page and ~0.3 CPU-s for each login after it, in the browser process
// (measured in a cgroup: 4 logins 8.1 → 6.6 CPU-s in all). Frames are
// composited in software instead; screenshots still work, and WebGL (a
// session's canvas, noCanvas: false) still runs on SwiftShader.
//
// Chromium has no switch that undoes a switch (there is no
// --enable-gpu-compositing), so CHROMIUM_ARGS cannot take one of these
// away; only the benchmarks do, to measure one against its absence
// (BENCH_CHROMIUM_DROP, bench/chromium-drop.ts, read by the bench's child
// processes alone).
export const EXTRA = [
  '--disable-gpu-compositing',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-default-apps',
  '--no-first-run',
  '--mute-audio',
  '--disable-dev-shm-usage'
]

/**
 * Flags that send every connection of the browser through the egress gate
 * (lib/browser/egress.ts) at `proxy`, with nothing around it:
 * - the proxy for everything, loopback included (Chromium otherwise goes
 *   direct to localhost, 127.0.0.0/8 and [::1] whatever the proxy says);
 * - no name resolution of its own: every name is sent to the proxy, and the
 *   resolver answers "not found" for anything else (DNS prefetch, preconnect);
 *   no secure DNS (DoH would be a connection of its own), no QUIC (UDP);
 * - WebRTC only over the proxy: no UDP at all (STUN, TURN/UDP, host candidates).
 * Browser contexts get their own proxy port (createBrowserContext), with
 * the same bypass rule.
 */
export function egressArgs (proxy: string): string[] {
  return [
    `--proxy-server=${proxy}`,
    `--proxy-bypass-list=${EGRESS_BYPASS.join(';')}`,
    '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1',
    '--disable-quic',
    '--dns-prefetch-disable',
    '--disable-features=DnsOverHttps,AsyncDns,NetworkPrediction',
    '--force-webrtc-ip-handling-policy=disable_non_proxied_udp'
  ]
}

/** Proxy bypass rules: none, and not even the implicit loopback one. */
export const EGRESS_BYPASS = ['<-loopback>']

export interface ChromiumLaunchOptions {
  /** A Chromium binary to use instead of the one @sparticuz/chromium ships. */
  executablePath?: string
  /** More command-line flags. */
  args?: string[]
}

export interface ResolvedChromium {
  executablePath: string
  args: string[]
  headless: boolean | 'shell'
}

/**
 * Resolve the binary and its flags. @sparticuz/chromium unpacks its binary to
 * /tmp on the first call (1–2 s); later calls are instant.
 */
export async function resolveChromium (opts: ChromiumLaunchOptions = {}): Promise<ResolvedChromium> {
  const asRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (opts.executablePath !== undefined && opts.executablePath !== '') {
    // From Chromium 144, software WebGL (SwiftShader, the only WebGL on a
    // host without a GPU) needs this flag; Foundry's canvas (noCanvas: false)
    // cannot start without WebGL. @sparticuz/chromium's own flags carry it.
    const args = [...EXTRA, '--enable-unsafe-swiftshader', ...(opts.args ?? [])]
    // Chromium refuses to start as root inside its sandbox.
    if (asRoot) args.push('--no-sandbox')
    const shell = /headless[-_]shell/.test(opts.executablePath)
    return { executablePath: opts.executablePath, args, headless: shell ? 'shell' : true }
  }
  const { default: chromium } = await import('@sparticuz/chromium')
  // @sparticuz/chromium's flags turn the sandbox off (Lambda has no user
  // namespaces). Its binary runs sandboxed fine elsewhere (checked as
  // `runuser -u nobody`: renderers under seccomp-bpf, in user namespaces), so
  // the sandbox stays on unless this process is root. Where user namespaces
  // are off, Chromium fails to start: pass CHROMIUM_ARGS=--no-sandbox there.
  const base = chromium.args.filter((a) => !DROPPED.has(a) && !a.startsWith('--headless') &&
    (asRoot || !UNSANDBOXED.has(a)))
  return {
    executablePath: await chromium.executablePath(),
    args: [...base, ...EXTRA, ...(opts.args ?? [])],
    headless: 'shell'
  }
}

/**
 * Chromium reads only the last --js-flags switch: merge every one into a
 * single switch (V8 flags separated by spaces), at the place of the first,
 * so CHROMIUM_ARGS can add V8 flags to the defaults instead of replacing them.
 */
export function mergeJsFlags (args: readonly string[]): string[] {
  const v8: string[] = []
  const out: string[] = []
  let at = -1
  for (const a of args) {
    if (!a.startsWith('--js-flags=')) { out.push(a); continue }
    if (at === -1) { at = out.length; out.push('') }
    const value = a.slice('--js-flags='.length).replace(/^(["'])(.*)\1$/, '$2').trim()
    if (value !== '') v8.push(value)
  }
  if (at === -1) return out
  if (v8.length === 0) out.splice(at, 1)
  else out[at] = `--js-flags=${v8.join(' ')}`
  return out
}

/**
 * Where each Chromium's profile (--user-data-dir) lives: a directory of its
 * own, `<pid of the process that launched it>-<random>`, in one directory
 * of this service's for each user (another user's service cannot write
 * in it, nor remove from it). puppeteer's own temporary profiles are removed by the
 * process that made them, when Chromium exits: a service killed
 * (SIGKILL, the kernel's OOM killer) left its profile behind on every
 * crash. Here the next launch on the machine removes the profiles of
 * processes that are gone.
 */
export const PROFILES_DIR = join(tmpdir(), `foundry-sessions-chromium-${process.getuid?.() ?? 'user'}`)

/** Remove the profiles whose launching process is gone; returns their names. */
export function removeStaleProfiles (dir = PROFILES_DIR): string[] {
  let names: string[]
  try { names = readdirSync(dir) } catch { return [] }
  const removed: string[] = []
  for (const name of names) {
    const pid = Number(/^(\d+)-/.exec(name)?.[1] ?? NaN)
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue
    try { rmSync(join(dir, name), { recursive: true, force: true }) } catch { continue }
    removed.push(name)
  }
  return removed
}

/** Whether a process with this pid exists (EPERM: it does, not ours). */
function alive (pid: number): boolean {
  try { process.kill(pid, 0); return true } catch (err) { return (err as NodeJS.ErrnoException).code === 'EPERM' }
}

/**
 * Launch one Chromium process. Signals are left to the service's own shutdown.
 *
 * DevTools runs over a pipe (--remote-debugging-pipe), not a WebSocket:
 * Chromium opens no DevTools port, so nothing on the machine (a session's
 * page through the egress gate included) can reach the browser's control
 * channel; and a Chromium whose service is killed sees the pipe close and
 * exits. Over the pipe, a Chromium that exits at once is only a closed
 * connection ("Target closed"): the same command is then launched once
 * more over a WebSocket, where puppeteer waits for its first line and
 * reports its exit code and stderr; that is the error reported. A launch
 * that timed out is not repeated.
 *
 * Its profile is a directory of PROFILES_DIR (unless CHROMIUM_ARGS names
 * a --user-data-dir), removed as soon as Chromium exits.
 */
export async function launchChromium (resolved: ResolvedChromium, extra: { protocolTimeout?: number } = {}): Promise<Browser> {
  removeStaleProfiles()
  let profile: string | undefined
  if (!resolved.args.some((a) => a.startsWith('--user-data-dir'))) {
    mkdirSync(PROFILES_DIR, { recursive: true })
    profile = mkdtempSync(join(PROFILES_DIR, `${process.pid}-`))
  }
  const options = (pipe: boolean): LaunchOptions => ({
    executablePath: resolved.executablePath,
    // puppeteer mutates the array it is given: always pass a fresh one.
    args: mergeJsFlags(resolved.args),
    headless: resolved.headless,
    pipe,
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    defaultViewport: null,
    protocolTimeout: extra.protocolTimeout ?? 60_000
  })
  let browser: Browser
  try {
    browser = await puppeteer.launch({ ...options(true), ...(profile !== undefined ? { userDataDir: profile } : {}) })
  } catch (err) {
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true })
    if (err instanceof TimeoutError) throw err
    const diagnosis = await puppeteer.launch({ ...options(false), timeout: 10_000 })
    // It started this time: the pipe's error stands.
    await diagnosis.close().catch(() => {})
    throw err
  }
  const child = browser.process()
  if (profile !== undefined && child !== null) {
    // Synchronously, in the exit event itself: gone before browser.close()
    // returns (it waits for the same event).
    const remove = (): void => { rmSync(profile, { recursive: true, force: true }) }
    if (child.exitCode !== null || child.signalCode !== null) remove()
    else child.once('exit', remove)
  }
  return browser
}
