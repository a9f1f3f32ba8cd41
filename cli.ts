#!/usr/bin/env node
// The command line: `foundry-sessions serve|start|list|end|watch`. Talks to
// the service through the typed client (public/client.ts). Passwords come
// from a prompt without echo, or from standard input when it is not a
// terminal: never from arguments or the environment.
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { createInterface } from 'node:readline'
import { read } from 'read'
import { ApiError, STAGE_TEXT, createClient, type ActiveSessionT, type Client, type ListReplyT, type SessionEvent } from './public/client.ts'

const USAGE = `Usage: foundry-sessions <command> [options]

Commands:
  serve                      Run the service (the same as npm start; configured by its environment)
  start                      Log into a Foundry world and keep the session
      --foundry-url URL        Foundry server URL, as opened in a browser (required)
      --user NAME              Foundry user name (required)
      --world WORLD            World title or id (default: the running world)
      --admin-password-stdin   Also read Foundry's administrator password (to launch a world)
      --admin-user NAME        Foundry v14's administrator user name, when one is configured
      --connection-token-stdin Also read the REST API module 3.x connection token
      --relaunch-world         Launch the world again if it shuts down while the session runs
      --login-if-active        Log in although Foundry shows the user as active elsewhere
      --module-optional        Succeed once the game is ready, without waiting for the module
  list                       List this API key's sessions
  end SESSION_ID             End a session (or cancel one still starting)
  watch SESSION_ID           Print a session's events until it ends

Options for start, list, end and watch:
  --server URL       The service (default: $FOUNDRY_SESSIONS_SERVER, else http://localhost:3010)
  --api-key KEY      API key (default: $FOUNDRY_SESSIONS_API_KEY)
  --json             Print the reply as JSON
  -h, --help         This help

The password is read from a prompt without echo, or, when standard input is not a terminal, from its
first line; the administrator password and the connection token follow on the next lines, in that order.
Exit status: 0 on success, 1 when the service refused (its code and sentence on stderr), 2 on bad usage.`

const OPTIONS = {
  server: { type: 'string' },
  'api-key': { type: 'string' },
  'foundry-url': { type: 'string' },
  user: { type: 'string' },
  world: { type: 'string' },
  'admin-user': { type: 'string' },
  'admin-password-stdin': { type: 'boolean' },
  'connection-token-stdin': { type: 'boolean' },
  'relaunch-world': { type: 'boolean' },
  'login-if-active': { type: 'boolean' },
  'module-optional': { type: 'boolean' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' }
} satisfies ParseArgsConfig['options']

class UsageError extends Error {}

type Values = ReturnType<typeof parse>['values']

function parse (argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
}

function out (line: string): void { process.stdout.write(`${line}\n`) }
function err (line: string): void { process.stderr.write(`${line}\n`) }

function clientFrom (v: Values): Client {
  const server = v.server ?? process.env.FOUNDRY_SESSIONS_SERVER ?? 'http://localhost:3010'
  const apiKey = v['api-key'] ?? process.env.FOUNDRY_SESSIONS_API_KEY ?? ''
  if (apiKey === '') throw new UsageError('an API key is needed: --api-key KEY or FOUNDRY_SESSIONS_API_KEY')
  try { new URL(server) } catch { throw new UsageError(`--server is not a URL: ${server}`) } // eslint-disable-line no-new
  return createClient({ server, apiKey })
}

/** The secrets start needs, in order: from a no-echo prompt, or lines of a piped stdin. */
async function readSecrets (prompts: string[]): Promise<string[]> {
  if (process.stdin.isTTY === true) {
    const answers: string[] = []
    for (const prompt of prompts) answers.push(await read({ prompt, silent: true, replace: '', output: process.stderr }))
    return answers
  }
  const lines: string[] = []
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false })
  for await (const line of rl) {
    lines.push(line)
    if (lines.length === prompts.length) break
  }
  rl.close()
  // A missing line is an empty secret (a Foundry user may have no password).
  return prompts.map((_, i) => lines[i] ?? '')
}

function since (iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return s < 90 ? `${s}s` : s < 5400 ? `${Math.round(s / 60)}m` : s < 172800 ? `${Math.round(s / 3600)}h` : `${Math.round(s / 86400)}d`
}

function describeEvent (e: SessionEvent): string {
  switch (e.type) {
    case 'stage': return `${STAGE_TEXT[e.stage] ?? e.stage}…`
    case 'status': return `${e.status}${e.reason !== '' ? `: ${e.reason}` : ''}`
    case 'module': return e.connected ? `module connected${e.clientId !== '' ? ` (${e.clientId})` : ''}` : `module not connected${e.reason !== '' ? `: ${e.reason}` : ''}`
    case 'egress': return `the page tried to reach ${e.target}, refused (${e.reason}; ${e.refused} so far)`
  }
}

function table (rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => i === r.length - 1 ? c : c.padEnd(widths[i]!)).join('  ')).join('\n')
}

function sessionLine (s: ActiveSessionT): string {
  const world = s.worldTitle !== '' ? s.worldTitle : s.worldName
  return `${world} as ${s.username}, ${s.status}; module ${s.clientId !== '' ? `connected (${s.clientId})` : 'not connected'}`
}

async function start (v: Values): Promise<void> {
  const client = clientFrom(v)
  const foundryUrl = v['foundry-url']
  const username = v.user
  if (foundryUrl === undefined || username === undefined) throw new UsageError('start needs --foundry-url URL and --user NAME')
  const prompts = [`Password for ${username}: `]
  if (v['admin-password-stdin'] === true) prompts.push('Foundry administrator password: ')
  if (v['connection-token-stdin'] === true) prompts.push('REST API module connection token: ')
  const [password = '', ...rest] = await readSecrets(prompts)
  const adminPassword = v['admin-password-stdin'] === true ? rest.shift() : undefined
  const connectionToken = v['connection-token-stdin'] === true ? rest.shift() : undefined
  const json = v.json === true
  const reply = await client.start({
    foundryUrl,
    username,
    password,
    ...(v.world !== undefined ? { worldName: v.world } : {}),
    ...(adminPassword !== undefined ? { adminPassword } : {}),
    ...(v['admin-user'] !== undefined ? { adminUsername: v['admin-user'] } : {}),
    ...(connectionToken !== undefined ? { connectionToken } : {}),
    ...(v['relaunch-world'] === true ? { relaunchWorld: true } : {}),
    ...(v['login-if-active'] === true ? { loginIfActive: true } : {}),
    ...(v['module-optional'] === true ? { requireModule: false } : {}),
    onEvent: (e) => { if (!json && e.type === 'stage') err(`  ${describeEvent(e)}`) }
  })
  if (json) {
    out(JSON.stringify(reply))
    return
  }
  const s = (await client.list()).activeSessions.find((a) => a.id === reply.sessionId)
  out(`${reply.message}.`)
  out(`Session ${reply.sessionId}${s !== undefined ? `: ${sessionLine(s)}` : ''}`)
}

async function list (v: Values): Promise<void> {
  const l: ListReplyT = await clientFrom(v).list()
  if (v.json === true) {
    out(JSON.stringify(l))
    return
  }
  const rows = [['SESSION', 'STATUS', 'WORLD', 'USER', 'MODULE', 'SINCE', 'REASON']]
  for (const s of l.pendingSessions) rows.push([s.id, `starting (${s.stage})`, s.worldName !== '' ? s.worldName : '-', s.username, '-', since(new Date(s.startTime).toISOString()), ''])
  for (const s of [...l.activeSessions, ...l.endedSessions]) {
    rows.push([s.id, s.status, s.worldTitle !== '' ? s.worldTitle : s.worldName !== '' ? s.worldName : '-', s.username,
      s.clientId !== '' ? 'connected' : 'not connected', since(s.statusChangedAt), s.status === 'active' ? '' : s.statusReason])
  }
  out(rows.length === 1 ? 'No sessions for this API key.' : table(rows))
}

async function end (v: Values, id: string | undefined): Promise<void> {
  if (id === undefined) throw new UsageError('end needs a SESSION_ID (see foundry-sessions list)')
  const reply = await clientFrom(v).end(id)
  out(v.json === true ? JSON.stringify(reply) : `${reply.message}: ${reply.sessionId}`)
}

async function watch (v: Values, id: string | undefined): Promise<void> {
  if (id === undefined) throw new UsageError('watch needs a SESSION_ID (see foundry-sessions list)')
  const stop = new AbortController()
  process.once('SIGINT', () => { stop.abort() })
  for await (const e of clientFrom(v).events(id, { signal: stop.signal })) {
    out(v.json === true ? JSON.stringify(e) : `${new Date(e.at).toLocaleTimeString()}  ${e.type.padEnd(6)}  ${describeEvent(e)}`)
  }
}

async function main (argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (e) {
    err(`USAGE: ${(e as Error).message}\n\n${USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  const [command, ...args] = positionals
  if (values.help === true || command === undefined || command === 'help') {
    (command === undefined && values.help !== true ? err : out)(USAGE)
    return command === undefined && values.help !== true ? 2 : 0
  }
  try {
    switch (command) {
      case 'serve':
        if (args.length > 0) throw new UsageError('serve takes no arguments: configure the service with its environment (see the README)')
        await import('./server.ts')
        return 0
      case 'start': await start(values); break
      case 'list': await list(values); break
      case 'end': await end(values, args[0]); break
      case 'watch': await watch(values, args[0]); break
      default: throw new UsageError(`unknown command "${command}"`)
    }
    return 0
  } catch (e) {
    if (e instanceof UsageError) {
      err(`USAGE: ${e.message}\n\n${USAGE}`)
      return 2
    }
    if (e instanceof ApiError) {
      err(`${e.code}: ${e.message}`)
      if (e.stage !== undefined) err(`  stage: ${e.stage}${e.page !== undefined ? `, page ${e.page}` : ''}`)
      return 1
    }
    err(`ERROR: ${(e as Error).message}`)
    return 1
  }
}

const code = await main(process.argv.slice(2))
// serve keeps running (its server holds the event loop); the others end here.
if (code !== 0 || process.argv[2] !== 'serve') process.exitCode = code
