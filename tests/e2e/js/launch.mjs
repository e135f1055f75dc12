// Headless Chromium (Debian's /usr/bin/chromium) through playwright-core, launched the same
// way by every browser test here: a throwaway profile, no sandbox (tests may run as root),
// no background traffic or updates, and a 30 s default timeout for every wait.
import { chromium } from 'playwright-core'

/** A persistent browser context on `userDataDir`, run by the Chromium at `executablePath`. */
export async function launch(userDataDir, executablePath, { viewport = { width: 1200, height: 900 } } = {}) {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    viewport,
  })
  context.setDefaultTimeout(30_000)
  return context
}
