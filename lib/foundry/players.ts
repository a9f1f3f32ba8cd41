// Foundry v14's /players page, the user setup of a world's first launch
// (page script ./page/players.js): pressed through with "Save and Continue".
import { FoundryError } from '../errors.ts'
import { isServiceError, type Driver } from './driver.ts'

export async function playersGate (d: Driver): Promise<void> {
  d.enter('join')
  // Press it once the page's own script is there to post it (on a loaded
  // machine the form shows before that script has run).
  await d.waitFor('players', 'ready', { timeout: d.opts.timeouts.joinForm, what: 'the user setup page\'s "Save and Continue"' })
    .catch((err: unknown) => { if (!isServiceError(err) || err.code !== 'FOUNDRY_TIMEOUT') throw err })
  // Listen before pressing: the page may be gone before the call returns.
  const navigated = d.page.waitForNavigation({ waitUntil: 'domcontentloaded' }).catch(() => {})
  const submitted = await d.call('players', 'submit')
  if (!submitted) {
    throw d.fail(FoundryError, 'Foundry shows the user setup page of a world launched for the first time (/players): open the world once in a browser and press "Save and Continue"')
  }
  await navigated
  if (d.route() === '/players') {
    throw d.fail(FoundryError, 'Foundry kept the browser on its first-launch user setup page (/players): open the world once in a browser and press "Save and Continue"')
  }
}
