// Diagnostics of a failed first login: a screenshot of its page, every
// password field emptied first, kept in the screenshot store for the owner.
import type { Page } from 'puppeteer-core'
import type { Logger } from '../logger.ts'
import { pageFunction } from '../foundry/page-scripts.ts'
import type { ScreenshotStore } from '../browser/screenshots.ts'

export interface ScreenshotTarget {
  store: ScreenshotStore
  /** The URL a screenshot id is served at. */
  url: (id: string) => string
}

/** The screenshot's URL, or undefined when none could be taken. */
export async function failureScreenshot (page: Page, ownerId: string, target: ScreenshotTarget, log: Logger, sessionId: string): Promise<string | undefined> {
  try {
    await page.evaluate(pageFunction('common', 'clearPasswords'))
    const png = await page.screenshot({ type: 'png' })
    return target.url(target.store.put(ownerId, png))
  } catch (err) {
    log.warn({ sessionId, err }, 'failure screenshot could not be taken')
    return undefined
  }
}
