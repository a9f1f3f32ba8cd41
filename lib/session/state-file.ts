// One machine's sessions across its own restart (SESSION_SEAL_KEY, no
// REDIS_URL): a state file under STATE_DIR holding each running session's
// record (no secret) and its credentials sealed as the fleet seals them
// (lib/fleet/seal.ts: AES-256-GCM, the session id as additional data). Never
// a secret in plaintext. Written atomically (a temporary file in the same
// directory, fsync, rename), after every change of a running session, so a
// SIGKILL leaves the last state; read once at start, when the sessions are
// logged back in with the same sessionId and clientId. A file that does not
// open (another seal key) fails its sessions with a clear reason; a file that
// cannot be read (truncated, corrupt) is set aside and said so, and the
// service starts without it.
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../logger.ts'
import { openCredentials, sealCredentials, type Sealer } from '../fleet/seal.ts'
import { isFinal, type Credentials, type Session } from './types.ts'

export const STATE_FILE_NAME = 'sessions.json'
const VERSION = 1

interface Stored { record: Session, sealed: string }
interface FileShape { version: number, writtenAt: string, sessions: Stored[] }

export interface Restored {
  /** Sessions to log back in. */
  sessions: Array<{ record: Session, credentials: Credentials }>
  /** Sessions that cannot be: their record, and why (listed as failed). */
  failed: Array<{ record: Session, reason: string }>
  /** What was dropped, in words (each also logged). */
  dropped: string[]
}

export interface StateFile {
  /** Where it is. */
  path: string
  /** Read it (once, at start). */
  load: () => Promise<Restored>
  /** Seal and keep a session's credentials (written with its record once it runs). */
  keep: (id: string, credentials: Credentials) => void
  /** A session's record changed: kept while it runs, forgotten once it is over. */
  update: (record: Session) => void
  /** Write it now (after a restore: without the sessions that could not be), and wait. */
  save: () => Promise<void>
  /** Wait for every write asked for so far. */
  flush: () => Promise<void>
}

export interface StateFileOptions {
  dir: string
  sealer: Sealer
  log: Logger
}

const running = (s: Session): boolean => s.status === 'active' || s.status === 'reconnecting'

function validRecord (r: unknown): r is Session {
  const s = r as Partial<Session> | null
  return s !== null && typeof s === 'object' && typeof s.id === 'string' && typeof s.ownerId === 'string' &&
    typeof s.foundryUrl === 'string' && typeof s.username === 'string' && typeof s.status === 'string' &&
    typeof s.startedAt === 'number' && typeof s.statusReason === 'string'
}

/** Make the directory (and check it takes files) before anything is kept. */
export async function createStateFile (opts: StateFileOptions): Promise<StateFile> {
  const { dir, sealer, log } = opts
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, STATE_FILE_NAME)
  const sealed = new Map<string, string>()
  const records = new Map<string, Session>()
  let writing: Promise<void> = Promise.resolve()
  let queued = false

  async function writeNow (): Promise<void> {
    const sessions: Stored[] = []
    for (const [id, record] of records) {
      const s = sealed.get(id)
      if (s !== undefined) sessions.push({ record, sealed: s })
    }
    const body: FileShape = { version: VERSION, writtenAt: new Date().toISOString(), sessions }
    const tmp = `${path}.${process.pid}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(body))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, path)
  }

  function schedule (): void {
    if (queued) return
    queued = true
    writing = writing.then(async () => {
      queued = false
      await writeNow()
    }).catch((err: Error) => {
      log.error({ err, path }, 'writing the state file failed: a restart now would lose the latest session changes')
    })
  }

  // A file this service can write, or start-up stops saying why.
  await writeProbe()
  async function writeProbe (): Promise<void> {
    const probe = join(dir, `.write-test-${process.pid}`)
    try {
      const fh = await open(probe, 'w', 0o600)
      await fh.close()
      await rm(probe, { force: true })
    } catch (err) {
      throw new Error(`STATE_DIR ${dir} is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the state file cannot be kept there`)
    }
  }

  return {
    path,

    async load () {
      const out: Restored = { sessions: [], failed: [], dropped: [] }
      let text: string
      try {
        text = await readFile(path, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out
        throw err
      }
      let parsed: FileShape
      try {
        parsed = JSON.parse(text) as FileShape
        if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.sessions)) throw new Error('no sessions array')
      } catch (err) {
        // Say what is lost: the session ids still legible in what is left.
        const ids = [...new Set([...text.matchAll(/"id":"([0-9a-f-]{36})"/g)].map((m) => m[1]!))]
        const aside = `${path}.corrupt`
        await rename(path, aside).catch(() => {})
        const what = `the state file ${path} could not be read (${(err as Error).message}; ${text.length} bytes): set aside as ${aside}; ` +
          (ids.length > 0 ? `sessions dropped: ${ids.join(', ')}` : 'no session could be made out in it')
        log.error({ path, bytes: text.length, droppedSessions: ids }, what)
        out.dropped.push(what)
        return out
      }
      if (parsed.version !== VERSION) {
        const what = `the state file ${path} has version ${String(parsed.version)}, not ${VERSION}: its ${parsed.sessions.length} sessions are dropped`
        log.error({ path }, what)
        out.dropped.push(what)
        return out
      }
      for (const [i, entry] of parsed.sessions.entries()) {
        if (entry === null || typeof entry !== 'object' || !validRecord(entry.record) || typeof entry.sealed !== 'string') {
          const id = (entry as { record?: { id?: unknown } } | null)?.record?.id
          const what = `state file entry ${i}${typeof id === 'string' ? ` (session ${id})` : ''} is not a session record with sealed credentials: dropped`
          log.error({ path }, what)
          out.dropped.push(what)
          continue
        }
        const { record } = entry
        if (isFinal(record.status) || record.status === 'starting') continue
        try {
          out.sessions.push({ record, credentials: openCredentials(sealer, record.id, entry.sealed) })
        } catch {
          out.failed.push({
            record,
            reason: 'the service restarted, but this session\'s sealed credentials in its state file do not open with this SESSION_SEAL_KEY (the key changed, or the file was altered): start it again'
          })
          log.error({ sessionId: record.id, path }, 'sealed credentials in the state file did not open: did SESSION_SEAL_KEY change?')
        }
      }
      return out
    },

    keep (id, credentials) {
      sealed.set(id, sealCredentials(sealer, id, credentials))
    },

    update (record) {
      if (running(record)) {
        if (!sealed.has(record.id)) return
        records.set(record.id, record)
      } else if (isFinal(record.status)) {
        const had = records.delete(record.id)
        sealed.delete(record.id)
        if (!had) return
      } else {
        return
      }
      schedule()
    },

    async save () {
      schedule()
      await writing
    },

    async flush () {
      await writing
    }
  }
}
