// What each page script (./page/*.js) offers: its functions' arguments and
// results, so `d.call('join', 'probe')` is typed by the page it runs in
// rather than cast by its caller. The page code itself stays plain
// JavaScript (see page-scripts.ts); PAGE_FUNCTIONS names every function, and
// test/lib/page-scripts.test.ts checks the names against what each script
// returns.
import type { PageScript } from './page-scripts.ts'
import type { FoundryStatus } from './driver.ts'
import type { AuthForm } from './reach.ts'
import type { JoinForm, JoinUser } from './join.ts'
import type { LaunchOutcome, SetupWorld } from './setup.ts'
import type { WorldInfo } from './types.ts'

interface CommonPage {
  errorCount: () => number
  lastError: (forms: boolean) => string
  users: () => JoinUser[]
  userCount: () => number
  status: (url: string) => Promise<FoundryStatus | null>
  postJson: (url: string, body: Record<string, unknown>) => Promise<{ status: number, text: string }>
  clearPasswords: () => boolean
}

export interface PageApi {
  common: CommonPage
  document: {
    watchSockets: (binding: string) => boolean
    setNoCanvas: () => boolean
    seedConnectionToken: (origin: string, key: string, token: string) => boolean
  }
  auth: {
    probe: () => AuthForm | false
    submit: (password: string, username: string) => boolean
    error: () => string
  }
  setup: {
    ready: () => boolean
    worlds: () => SetupWorld[]
    dismissOverlays: () => number
    errorCount: CommonPage['errorCount']
    launch: (id: string) => boolean
    outcome: (statusUrl: string, id: string, errorsBefore: number) => Promise<LaunchOutcome | false>
    declineMigration: () => boolean
  }
  players: {
    ready: () => boolean
    submit: () => boolean
  }
  join: {
    worldTitle: () => string
    probe: () => JoinForm | false
    users: () => JoinUser[]
    postJson: CommonPage['postJson']
    status: CommonPage['status']
  }
  game: {
    ready: () => boolean
    info: () => WorldInfo
    otherPrimaryGm: (me: string) => boolean
    lease: (until: number) => void
  }
}

/** A function of page script S. */
export type PageFn<S extends PageScript> = keyof PageApi[S] & string
type Signature<S extends PageScript, F extends PageFn<S>> = PageApi[S][F] extends (...args: infer A) => infer R ? { args: A, result: Awaited<R> } : never
/** The arguments of F in page script S. */
export type PageArgs<S extends PageScript, F extends PageFn<S>> = Signature<S, F>['args']
/** What F in page script S returns (resolved). */
export type PageResult<S extends PageScript, F extends PageFn<S>> = Signature<S, F>['result']

/** Every page function by script; the compiler keeps it equal to PageApi, the test to the scripts. */
export const PAGE_FUNCTIONS: { [S in PageScript]: { [F in PageFn<S>]: true } } = {
  common: { errorCount: true, lastError: true, users: true, userCount: true, status: true, postJson: true, clearPasswords: true },
  document: { watchSockets: true, setNoCanvas: true, seedConnectionToken: true },
  auth: { probe: true, submit: true, error: true },
  setup: { ready: true, worlds: true, dismissOverlays: true, errorCount: true, launch: true, outcome: true, declineMigration: true },
  players: { ready: true, submit: true },
  join: { worldTitle: true, probe: true, users: true, postJson: true, status: true },
  game: { ready: true, info: true, otherPrimaryGm: true, lease: true }
}
