// Reaching Foundry and its gatekeeping pages: /license (an error: never
// signed for the user), /auth (the administrator login, page script
// ./page/auth.js), and pages that are not Foundry's at all.
import {
  AdminPasswordRejected, AdminPasswordRequired, FoundryError, LicenseNotSigned, NotFoundry, WorldNotRunning
} from '../errors.ts'
import { KNOWN_ROUTES, type Driver } from './driver.ts'

/** What ./page/auth.js's probe sees: the form, and whether it asks for an administrator user name (v14). */
export interface AuthForm { kind: 'form', username: boolean }

export function licence (d: Driver): never {
  throw d.fail(LicenseNotSigned, 'Foundry shows its licence page: sign the licence (EULA) and enter the licence key in a browser once; this service never accepts a licence on your behalf')
}

/** /auth: Foundry's administrator login, posted by its own form. */
export async function adminAuth (d: Driver): Promise<void> {
  d.enter('admin-auth')
  const { adminPassword, worldName } = d.params
  if (worldName === undefined || worldName === '') {
    throw d.fail(WorldNotRunning, 'No world is running on this Foundry server: name the world to launch in x-world-name, and send Foundry\'s administrator password as encryptedAdminPassword')
  }
  if (adminPassword === undefined || adminPassword === '') {
    throw d.fail(AdminPasswordRequired, `No world is running and Foundry asks for its administrator password to launch "${worldName}": send it as encryptedAdminPassword (encrypted like the password), or launch the world in Foundry yourself`)
  }
  const form = await d.waitFor('auth', 'probe', { timeout: d.opts.timeouts.joinForm, what: 'the administrator password form' })
  if (d.adminAuthTried) {
    const flash = await d.errorNotice()
    const why = flash !== '' ? ` (${flash})` : ''
    if (form.username && (d.params.adminUsername ?? '') === '') {
      throw d.fail(AdminPasswordRejected, `Foundry rejected the administrator login${why}. Its login page also asks for an administrator user name (Foundry v14 with an administrator user configured): send it as adminUsername, with encryptedAdminPassword`)
    }
    if (form.username) {
      throw d.fail(AdminPasswordRejected, `Foundry rejected the administrator login${why}: check adminUsername and encryptedAdminPassword`)
    }
    throw d.fail(AdminPasswordRejected, `Foundry rejected the administrator password${why}: check encryptedAdminPassword`)
  }
  d.adminAuthTried = true
  // A native form post: the browser sends exactly what Foundry's page sends.
  await Promise.all([
    d.page.waitForNavigation({ waitUntil: 'domcontentloaded' }),
    d.call('auth', 'submit', adminPassword, d.params.adminUsername ?? '')
  ])
}

/** A page outside Foundry's known routes: Foundry in a state we do not know, or not Foundry. */
export async function notFoundryOr (d: Driver, route: string | null): Promise<never> {
  const where = d.pagePath() ?? d.page.url()
  if (route !== null && !KNOWN_ROUTES.has(route)) {
    const status = await d.status().catch(() => null)
    if (typeof status?.version === 'string') {
      throw d.fail(FoundryError, `Foundry ${status.version} sent the browser to ${where}, a page this service does not know how to pass`)
    }
  }
  throw d.fail(NotFoundry, `${d.base.href} answered, but it is not a Foundry VTT server (the browser landed on ${route === null ? 'another site' : where}): check x-foundry-url`)
}
