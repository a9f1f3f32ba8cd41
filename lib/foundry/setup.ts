// Foundry's /setup page (page script ./page/setup.js): find the world, close
// first-load overlays, launch it with its own play control and wait for the
// outcome. Never migrates a world and never accepts anything on the user's
// behalf: a migration dialog, a locked world or a failed launch is an error.
import {
  AdminPasswordRequired, FoundryError, WorldLaunchFailed, WorldLocked, WorldNeedsMigration, WorldNotFound, WorldNotRunning
} from '../errors.ts'
import type { Driver } from './driver.ts'
import { foundryMessage, matchWorld } from './names.ts'

export interface SetupWorld { id: string, title: string }

/** What a launch came to (./page/setup.js `outcome`). */
export type LaunchOutcome =
  | { kind: 'active' }
  | { kind: 'migration' }
  | { kind: 'error', message: string }

export async function launchWorld (d: Driver): Promise<void> {
  const { worldName } = d.params
  if (worldName === undefined || worldName === '') {
    throw d.fail(WorldNotRunning, 'No world is running on this Foundry server: name the world to launch in x-world-name (or the worldName body field)')
  }
  if (d.params.launchWorld === false) {
    throw d.fail(WorldNotRunning, `World "${worldName}" is no longer running on this Foundry server, and relaunching it was not allowed for this session (start it with "relaunchWorld": true to allow it)`)
  }
  d.enter('world-launch')
  await d.waitFor('setup', 'ready', { timeout: d.opts.timeouts.joinForm, what: 'the setup page\'s world list' })
  const worlds = await d.call('setup', 'worlds')
  const world = matchWorld(worlds, worldName)
  if (world === undefined) {
    const titles = worlds.map((w) => `"${w.title}"`).join(', ')
    throw d.fail(WorldNotFound, `No world "${worldName}" on this Foundry server. Worlds: ${titles === '' ? 'none' : titles}`)
  }
  await d.call('setup', 'dismissOverlays')
  // The world's own play control, so that Foundry's client runs its checks
  // (a world that needs migrating opens a dialog instead).
  const errorsBefore = await d.call('setup', 'errorCount')
  if (!await d.call('setup', 'launch', world.id)) {
    throw d.fail(FoundryError, `The setup page shows world "${world.title}" without a launch control this service knows: launch the world in Foundry yourself`)
  }
  // The setup page navigates by itself when the launch completes; the wait follows it.
  const outcome = await d.waitFor('setup', 'outcome',
    { timeout: d.opts.timeouts.worldLaunch, what: `world "${world.title}" to finish launching`, polling: 250 },
    d.url('api/status'), world.id, errorsBefore)
  switch (outcome.kind) {
    case 'migration':
      await d.call('setup', 'declineMigration').catch(() => {})
      throw d.fail(WorldNeedsMigration, `World "${world.title}" needs a data migration before it can be launched. Migration is irreversible: back up the world, launch it once in Foundry and confirm the migration there, then start the session again`)
    case 'error':
      throw launchError(d, world, foundryMessage(outcome.message))
    case 'active':
      d.enter('join')
      if (d.route() !== '/join') await d.goto(d.url('join'))
  }
}

function launchError (d: Driver, world: SetupWorld, reason: string): Error {
  if (/LaunchLocked|locked/i.test(reason)) {
    return d.fail(WorldLocked, `World "${world.title}" is locked against launching (${reason}): unlock it in Foundry's setup page first`)
  }
  if (/Migrat/i.test(reason)) {
    return d.fail(WorldNeedsMigration, `World "${world.title}" needs a data migration before it can be launched (${reason}): launch it once in Foundry and confirm the migration there`)
  }
  if (/InvalidAdminKey|Forbidden/i.test(reason)) {
    return d.fail(AdminPasswordRequired, `Foundry refused to launch "${world.title}" without its administrator password (${reason}): send it as encryptedAdminPassword`)
  }
  return d.fail(WorldLaunchFailed, `Foundry failed to launch "${world.title}" (${reason}): see the Foundry server's log for the cause`)
}
