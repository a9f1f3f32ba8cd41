// Foundry v14's /players page, the user setup of a world's first launch
// (page script ./page/players.js): pressed through with "Save and Continue".
import { FoundryError } from '../errors.js'
import type { Driver } from './driver.js'

export async function playersGate (d: Driver): Promise<void> {
  d.enter('join')
  const submitted = await d.call('players', 'submit')
  if (!submitted) {
    throw d.fail(FoundryError, 'Foundry shows the user setup page of a world launched for the first time (/players): open the world once in a browser and press "Save and Continue"')
  }
  await d.page.waitForNavigation({ waitUntil: 'domcontentloaded' }).catch(() => {})
  if (d.route() === '/players') {
    throw d.fail(FoundryError, 'Foundry kept the browser on its first-launch user setup page (/players): open the world once in a browser and press "Save and Continue"')
  }
}
