// The reference web app's layout on a phone (390×844) and a desktop (1280×800), in headless
// Chromium with playwright-core: signed in anonymously (no credits yet), the page is measured
// — its width against the viewport, every visible control's box against every other's — and
// a button whose press fails (no credits) is pressed: where the error shows, against where
// the button is. A full-page screenshot per size. Prints one JSON object for
// tests/e2e/test_web_app_layout.py.
//   node web_app_layout.mjs <base URL> <screenshot dir> <user-data-dir> <chromium>
import { launch } from './launch.mjs'

const [base, shotDir, userDataDir, executablePath] = process.argv.slice(2)
const SIZES = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } }
const out = { page_errors: [], sizes: {} }

/** Measured in the page: overflow, and pairs of visible controls whose boxes overlap. */
function measure() {
  const controls = [...document.querySelectorAll('input, select, textarea, button, progress, video, audio')]
  const name = (el) => el.dataset.testid || el.getAttribute('aria-label') || el.name || el.textContent.trim().slice(0, 30) || el.tagName
  const boxes = []
  for (const el of controls) {
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) continue
    const r = el.getBoundingClientRect()
    if (r.width < 1 || r.height < 1) continue
    boxes.push({ name: name(el), left: r.left + scrollX, right: r.right + scrollX, top: r.top + scrollY, bottom: r.bottom + scrollY })
  }
  const overlaps = []
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j]
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left)
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top)
      if (w > 0.5 && h > 0.5) overlaps.push([a.name, b.name, Math.round(w), Math.round(h)])
    }
  }
  const outside = boxes.filter((b) => b.left < -0.5 || b.right > innerWidth + 0.5).map((b) => b.name)
  // What sticks out past the right edge, widest first: names the culprit of an overflow
  // (the page's width held at the viewport's while it is measured, so containers stay put
  // and what does not fit shows).
  const held = document.body.style.width
  document.body.style.width = `${innerWidth}px`
  const wide = [...document.querySelectorAll('body *')]
    .map((el) => [el, el.getBoundingClientRect()])
    .filter(([, r]) => r.right > innerWidth + 0.5 && r.width > 0)
    // the innermost: no child of its own sticks out
    .filter(([el]) => ![...el.children].some((c) => c.getBoundingClientRect().right > innerWidth + 0.5))
    .sort(([, a], [, b]) => b.right - a.right)
    .slice(0, 5)
    .map(([el, r]) => `${el.tagName.toLowerCase()}#${el.id || el.dataset.testid || ''}.${el.className || ''} right=${Math.round(r.right)} text=${(el.innerText || el.value || '').slice(0, 60)}`)
  document.body.style.width = held
  // Elements whose content is wider than their box (a long word, a row that cannot wrap).
  for (const el of document.querySelectorAll('body *')) {
    if (el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0 && getComputedStyle(el).overflowX === 'visible') {
      wide.push(`overflowing ${el.tagName.toLowerCase()}#${el.id || el.dataset.testid || ''} ${el.scrollWidth}>${el.clientWidth} text=${(el.innerText || '').slice(0, 80)}`)
    }
  }
  return {
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth,
    controls: boxes.length,
    overlaps,
    outside,
    wide,
  }
}

/** Press a button whose action fails; where the error box is, against the button. */
async function pressAndFail(page, buttonId, errorId) {
  const button = page.getByTestId(buttonId)
  await button.scrollIntoViewIfNeeded()
  await button.click()
  const box = page.getByTestId(errorId)
  await box.waitFor({ state: 'visible' })
  // The page scrolls the error into view: wait for that (then measure where it is, whether
  // or not it got there).
  await page
    .waitForFunction((id) => {
      const r = document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect()
      return r.top >= 0 && r.bottom <= innerHeight
    }, errorId, { timeout: 10000 })
    .catch(() => {})
  return page.evaluate(([b, e]) => {
    const rect = (id) => {
      const r = document.querySelector(`[data-testid="${id}"]`).getBoundingClientRect()
      return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height }
    }
    return { button: rect(b), error: rect(e), innerWidth, innerHeight, code: document.querySelector(`[data-testid="${e}"]`).dataset.code, text: document.querySelector(`[data-testid="${e}"]`).innerText }
  }, [buttonId, errorId])
}

for (const [size, viewport] of Object.entries(SIZES)) {
  const context = await launch(`${userDataDir}-${size}`, executablePath, { viewport })
  const page = context.pages()[0] ?? (await context.newPage())
  page.on('pageerror', (err) => out.page_errors.push(String(err)))
  try {
    await page.goto(`${base}/app/`)
    await page.waitForSelector('body[data-ready="true"]')
    const signedOut = await page.evaluate(measure)
    await page.getByTestId('sign-in-anon').click()
    await page.getByTestId('signed-in').waitFor({ state: 'visible' })
    await page.waitForFunction(() => document.querySelector('[data-testid="balance"]').textContent !== '…')
    await page.waitForFunction(() => document.querySelector('[data-testid="model"]').options.length > 0)
    const signedIn = await page.evaluate(measure)
    const batch = await pressAndFail(page, 'batch-create', 'error')
    const wizard = await pressAndFail(page, 'wizard-write', 'wizard-error')
    // The wizard's last step, at the bottom of a long card: with the free credits, a script,
    // its narration and pictures (they run in the request); a batch and a video reserve
    // the rest (no worker runs them); then Assemble fails for want of credits.
    const byId = (id) => page.getByTestId(id)
    await byId('claim').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="claim"]').textContent === 'Free credits claimed')
    await byId('wizard-write').click()
    await byId('wizard-script').waitFor({ state: 'visible' })
    await page.waitForFunction(() => document.querySelector('[data-testid="wizard-voice"]').options.length > 0)
    await byId('wizard-narrate').click()
    await byId('wizard-pictures-step').waitFor({ state: 'visible' })
    await byId('wizard-pictures').click()
    await byId('wizard-assemble-step').waitFor({ state: 'visible' })
    await byId('batch-create').click()
    await byId('batch').waitFor({ state: 'visible' })
    await byId('generate').click()
    await page.locator('[data-testid="job"]').first().waitFor({ state: 'visible' })
    await page.waitForFunction(() => document.querySelector('[data-testid="balance"]').textContent === '0')
    const assemble = await pressAndFail(page, 'wizard-assemble', 'wizard-error')
    const afterErrors = await page.evaluate(measure)
    const shot = `${shotDir}/web-app-${size}.png`
    await page.screenshot({ path: shot, fullPage: true })
    out.sizes[size] = { viewport, signedOut, signedIn, afterErrors, errors: { batch, wizard, assemble }, screenshot: shot }
  } finally {
    await context.close()
  }
}
console.log(JSON.stringify(out))
