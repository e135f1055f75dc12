// Drives the reference web app (/app/) in headless Chromium with playwright-core, as a
// person would: sign in anonymously and claim, sign out; sign up with email + password,
// sign out, sign in; claim, upload a still, make a text-to-video and an image-to-video,
// watch progress reach 100 %, play the video, cancel a third job while it runs, page
// through history, and read an API error.
// Prints one JSON object (what the page showed) for tests/e2e/test_web_app.py to check;
// each step is logged to stderr with its time.
// Scenario `fallback`: the Realtime websocket is refused, and an anonymous user's job must
// still reach 100 % through the page's polling.
// Scenario `workspace`: an anonymous user makes one job outside any project (its quote read
// first), creates and renames a project, is refused a batch too big for the balance, makes a
// batch of two text-to-video jobs in the project and watches its progress bar reach 100 %
// over Realtime (each job's ETA too), filters the history by the project, saves the dark
// theme and a language, reloads, and deletes the project.
// Scenario `wizard`: an email user improves a prompt (declines, then uses it) and makes the
// job with both prompts; then runs the wizard step by step: a script of two sections, one
// narration edited (the analysis follows), shorter, a step that fails, a voice previewed, the
// narration, the pictures, the video assembled and played.
//   node web_app.mjs <base URL> <still.png> <screenshot.png> <user-data-dir> <chromium> [full|fallback|workspace|wizard]
import { launch } from './launch.mjs'

const [base, stillPath, screenshotPath, userDataDir, executablePath, scenario = 'full'] = process.argv.slice(2)
const started = Date.now()
const log = (step) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${step}`)
const out = { page_errors: [], console_errors: [], progress_seen: {} }

const context = await launch(userDataDir, executablePath)

if (scenario === 'fallback') {
  // As if no Realtime server answered: every websocket to it is closed at once.
  await context.routeWebSocket(/\/realtime\/v1\//, (ws) => ws.close({ code: 1011, reason: 'no realtime here' }))
}
const page = context.pages()[0] ?? (await context.newPage())
try {
  page.on('pageerror', (err) => out.page_errors.push(String(err)))
  page.on('console', (msg) => {
    if (msg.type() === 'error') out.console_errors.push(msg.text())
  })
  const byId = (id) => page.getByTestId(id)

  await page.goto(`${base}/app/`)
  await page.waitForSelector('body[data-ready="true"]')
  log('page loaded')

  /** Claim the free credits: the balance before and after. */
  async function claim() {
    await page.waitForFunction(() => document.querySelector('[data-testid="balance"]').textContent !== '…')
    const before = Number(await byId('balance').textContent())
    await byId('claim').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="claim"]').textContent === 'Free credits claimed')
    return { before, after: Number(await byId('balance').textContent()), disabled: await byId('claim').isDisabled() }
  }
  const userIs = (label) =>
    page.waitForFunction((e) => document.querySelector('[data-testid="user"]').textContent === e, label)

  /** Fill the form and submit; the id of the job card that appears. */
  async function generate({ kind, model, prompt, duration, resolution = '480p', sections = null }) {
    const before = await page.locator('[data-testid="job"]').count()
    await byId('kind').selectOption(kind)
    await byId('model').selectOption(model)
    await byId('prompt').fill(prompt)
    await byId('duration').fill(String(duration))
    await byId('resolution').selectOption(resolution)
    if (sections !== null) {
      await byId('sections').fill(String(sections))
      await byId('compose-use-upload').check() // the upload illustrates the first section
    }
    await byId('generate').click()
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="job"]').length > n, before)
    return page.locator('[data-testid="job"]').first().getAttribute('data-job-id')
  }
  const card = (jobId) => page.locator(`[data-testid="job"][data-job-id="${jobId}"]`)

  /** Sample the card's progress text until its status is terminal. */
  async function follow(jobId, timeoutMs = 90_000) {
    const seen = []
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const status = await card(jobId).getAttribute('data-status')
      const progress = await card(jobId).getByTestId('job-progress').textContent()
      if (seen.at(-1) !== progress) seen.push(progress)
      if (['completed', 'failed', 'canceled'].includes(status)) {
        out.progress_seen[jobId] = seen
        return status
      }
      if (Date.now() > deadline) throw new Error(`job ${jobId} stuck at ${status} ${progress}`)
      await page.waitForTimeout(100)
    }
  }

  /** Play a finished job's video in the page: metadata loaded, time advancing. */
  async function play(jobId) {
    const video = card(jobId).getByTestId('job-video')
    await video.waitFor({ state: 'visible' })
    return video.evaluate(async (v) => {
      const until = (event) => new Promise((resolve, reject) => {
        v.addEventListener(event, resolve, { once: true })
        v.addEventListener('error', () => reject(new Error(`video error ${v.error?.code}: ${v.error?.message}`)), { once: true })
      })
      if (v.readyState < 1) await until('loadedmetadata')
      v.muted = true // autoplay policy: a muted video may play without a gesture
      await v.play()
      const t0 = performance.now()
      while (v.currentTime < 0.3 && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50))
      v.pause()
      return {
        duration: v.duration, currentTime: v.currentTime, width: v.videoWidth, height: v.videoHeight,
        src: v.currentSrc, poster: v.poster, error: v.error?.code ?? null,
      }
    })
  }

  /**
   * Fill a form whose quote line is `testid`, then wait for the quote of exactly what was
   * typed: the line's `data-items` must hold `prompts` (in order) at `duration` seconds.
   * An earlier quote still in flight (of the form's previous contents) never matches.
   */
  async function quoted(testid, { prompts, duration }, fill) {
    await fill()
    await page.waitForFunction(([id, want]) => {
      const el = document.querySelector(`[data-testid="${id}"]`)
      if (!el.dataset.items) return false
      const items = JSON.parse(el.dataset.items)
      return items.length === want.prompts.length &&
        items.every((item, i) => item.params.prompt === want.prompts[i] && item.params.duration === want.duration)
    }, [testid, { prompts, duration }])
    return byId(testid).evaluate((el) => ({
      text: el.textContent, state: el.dataset.state,
      total: Number(el.dataset.total), seconds: Number(el.dataset.seconds), balance: Number(el.dataset.balance),
    }))
  }
  const looks = () => page.evaluate(() => ({
    theme: document.documentElement.dataset.theme,
    lang: document.documentElement.lang,
    background: getComputedStyle(document.body).backgroundColor,
    select: document.querySelector('[data-testid="theme"]').value,
  }))
  const historyRows = () => page.locator('[data-testid="history-row"]').evaluateAll((rows) =>
    rows.map((r) => ({ id: r.dataset.jobId, status: r.dataset.status })))

  if (scenario === 'workspace') {
    await byId('sign-in-anon').click()
    await byId('user').waitFor({ state: 'visible' })
    out.user_id = await byId('user').getAttribute('data-user-id')
    out.claim = await claim()
    await page.waitForFunction(() => document.querySelector('[data-testid="tier"]').textContent !== '…')
    out.tier = await byId('tier').textContent()
    out.looks_before = await looks()

    // One job in no project, its quote line read before it is made.
    out.loose_quote = await quoted('quote', { prompts: ['A kite over a beach'], duration: 3 }, async () => {
      await byId('prompt').fill('A kite over a beach')
      await byId('duration').fill('3')
    })
    out.loose = await generate({
      kind: 'text_to_video', model: 'reference/text-to-video', prompt: 'A kite over a beach', duration: 3,
    })
    log(`quote "${out.loose_quote.text}"; loose job ${out.loose}`)

    // A project: created, then renamed; it is selected.
    await byId('project-title').fill('Launch trailer')
    await byId('project-create').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="project"]').value !== '')
    out.project_id = await byId('project').inputValue()
    await byId('project-title').fill('Launch teaser')
    await byId('project-rename').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="history-scope"]').textContent.includes('Launch teaser'))
    out.project_title = await byId('project').evaluate((s) => s.selectedOptions[0].textContent)
    log(`project ${out.project_id} “${out.project_title}”`)

    // A batch too big for the balance: the quote says so, and so does the 402.
    const shots = ['one', 'two', 'three', 'four', 'five'].map((n) => `Shot ${n}`)
    out.short_quote = await quoted('batch-quote', { prompts: shots, duration: 10 }, async () => {
      await byId('batch-prompts').fill(shots.join('\n'))
      await byId('batch-duration').fill('10')
    })
    await byId('batch-create').click()
    await byId('error').waitFor({ state: 'visible' })
    out.short_error = {
      code: await byId('error').getAttribute('data-code'),
      message: await byId('error-message').textContent(),
      text: await byId('error').innerText(),
    }
    await byId('error-close').click()
    log(`batch refused: ${out.short_error.message}`)

    // The batch: two text-to-video jobs in the project, followed as one — over Realtime, so
    // the channel is joined first (on a busy machine the join may outlast the batch's first
    // seconds, and until then the page rightly polls).
    await page.waitForFunction(() => document.querySelector('[data-testid="channel-status"]').textContent === 'SUBSCRIBED')
    out.prompts = ['A lighthouse at night', 'A fox in the snow']
    out.batch_quote = await quoted('batch-quote', { prompts: out.prompts, duration: 3 }, async () => {
      await byId('batch-prompts').fill(out.prompts.join('\n'))
      await byId('batch-duration').fill('3')
      await byId('batch-title').fill('Two shots')
    })
    const jobsBefore = await page.locator('[data-testid="job"]').count()
    await byId('batch-create').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="batch"]').dataset.batchId)
    out.batch_id = await byId('batch').getAttribute('data-batch-id')
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="job"]').length >= n + 2, jobsBefore)
    out.batch_jobs = (await page.locator('[data-testid="job"]').evaluateAll((cards) => cards.map((c) => c.dataset.jobId)))
      .slice(0, 2)
    log(`batch ${out.batch_id}: jobs ${out.batch_jobs}; quote "${out.batch_quote.text}"`)
    out.batch_percent_seen = []
    out.eta_seen = Object.fromEntries(out.batch_jobs.map((id) => [id, []]))
    const deadline = Date.now() + 60_000
    for (;;) {
      const batch = await byId('batch').evaluate((el) => ({
        percent: el.querySelector('[data-testid="batch-percent"]').textContent, done: el.dataset.done,
      }))
      if (out.batch_percent_seen.at(-1) !== batch.percent) out.batch_percent_seen.push(batch.percent)
      for (const id of out.batch_jobs) {
        const eta = await card(id).getByTestId('job-eta').textContent()
        if (out.eta_seen[id].at(-1) !== eta) out.eta_seen[id].push(eta)
      }
      if (batch.done === 'true') break
      if (Date.now() > deadline) throw new Error(`batch stuck at ${batch.percent}`)
      await page.waitForTimeout(100)
    }
    out.batch_shown = await byId('batch').evaluate((el) => ({
      source: el.dataset.source,
      status: el.querySelector('[data-testid="batch-status"]').textContent,
      percent: el.querySelector('[data-testid="batch-percent"]').textContent,
      bar: el.querySelector('[data-testid="batch-progress-bar"]').value,
      summary: el.querySelector('[data-testid="batch-summary"]').textContent,
      broadcasts: Number(el.querySelector('[data-testid="batch-broadcasts"]').textContent),
      polls: Number(el.querySelector('[data-testid="batch-polls"]').textContent),
      polled: el.querySelector('[data-testid="batch-polls"]').title,
      cancel_disabled: el.querySelector('[data-testid="batch-cancel"]').disabled,
    }))
    out.final_eta = {}
    for (const id of out.batch_jobs) out.final_eta[id] = await card(id).getByTestId('job-eta').textContent()
    log(`batch done: ${JSON.stringify(out.batch_shown)}; percent ${out.batch_percent_seen}; ETAs ${JSON.stringify(out.eta_seen)}`)

    // The history of the project: exactly the batch's jobs; of no project: all three.
    await page.waitForFunction(() => {
      const rows = [...document.querySelectorAll('[data-testid="history-row"]')]
      return rows.length > 0 && rows.every((r) => r.dataset.status === 'completed')
    })
    out.project_history = { label: await byId('history-page').textContent(), rows: await historyRows() }
    await byId('project').selectOption('')
    await page.waitForFunction(() => document.querySelector('[data-testid="history-page"]').textContent.includes('(3 jobs)'))
    out.all_history = { label: await byId('history-page').textContent(), rows: await historyRows() }
    await byId('project').selectOption(out.project_id)
    await page.waitForFunction(() => document.querySelector('[data-testid="history-page"]').textContent.includes('(2 jobs)'))
    log(`history: project ${out.project_history.label}; all ${out.all_history.label}`)

    // Preferences: dark, pt-BR, saved; then the page reloads them from the profile.
    await byId('theme').selectOption('dark')
    await byId('language').selectOption('pt-BR')
    await byId('profile-save').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="profile-status"]').textContent === 'saved')
    out.looks_saved = await looks()
    await byId('batch').scrollIntoViewIfNeeded()
    await page.screenshot({ path: screenshotPath, fullPage: true })
    log(`screenshot ${screenshotPath}`)
    out.live_source = await byId('live-source').textContent()
    out.live_counts = await byId('live-counts').textContent()
    out.channel_status = await byId('channel-status').textContent()

    await page.reload()
    await page.waitForSelector('body[data-ready="true"]')
    await byId('user').waitFor({ state: 'visible' })
    await page.waitForFunction(() => document.querySelector('[data-testid="tier"]').textContent !== '…')
    await page.waitForFunction(() => document.querySelector('[data-testid="history-page"]').textContent !== '…')
    out.looks_reloaded = await looks()
    out.reloaded = {
      user_id: await byId('user').getAttribute('data-user-id'),
      project: await byId('project').inputValue(),
      history_label: await byId('history-page').textContent(),
    }
    log(`reloaded: ${JSON.stringify(out.looks_reloaded)}`)

    // Delete the project (confirmed): its jobs stay, in no project.
    page.once('dialog', (dialog) => dialog.accept())
    await byId('project-delete').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="project-info"]').textContent.startsWith('Deleted'))
    out.deleted = {
      info: await byId('project-info').textContent(),
      project: await byId('project').inputValue(),
      options: await byId('project').evaluate((s) => s.options.length),
    }
    await page.waitForFunction(() => document.querySelector('[data-testid="history-page"]').textContent.includes('(3 jobs)'))
    log(`deleted: ${out.deleted.info}`)
  } else if (scenario === 'wizard') {
    // An email user (the full grant: a 60 s video reserves 65 credits).
    const email = `wizard-${Date.now()}@example.test`
    await byId('email').fill(email)
    await byId('password').fill('correct horse battery')
    await byId('sign-up-email').click()
    await userIs(email)
    out.user_id = await byId('user').getAttribute('data-user-id')
    out.claim = await claim()
    log(`signed up ${email}; claimed ${JSON.stringify(out.claim)}`)

    // Prompt enhancement: offered, declined ("Keep mine"), offered again and used.
    await byId('kind').selectOption('text_to_video')
    await byId('model').selectOption('reference/text-to-video')
    await byId('prompt').fill('a paper boat on a river')
    await byId('duration').fill('1')
    await byId('enhance').click()
    await byId('enhance-panel').waitFor({ state: 'visible' })
    out.enhance = {
      original: await byId('enhance-original').textContent(),
      enhanced: await byId('enhance-enhanced').textContent(),
      template: await byId('enhance-template').textContent(),
    }
    await byId('enhance-keep').click()
    out.kept = { prompt: await byId('prompt').inputValue(), panel_hidden: await byId('enhance-panel').isHidden() }
    await byId('enhance').click()
    await byId('enhance-panel').waitFor({ state: 'visible' })
    await byId('enhance-use').click()
    out.enhance.prompt_used = await byId('prompt').inputValue()
    out.enhance.status = await byId('enhance-status').textContent()
    const before = await page.locator('[data-testid="job"]').count()
    await byId('generate').click()
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid="job"]').length > n, before)
    out.enhanced_job = await page.locator('[data-testid="job"]').first().getAttribute('data-job-id')
    out.statuses = { [out.enhanced_job]: await follow(out.enhanced_job) }
    log(`enhanced: "${out.enhance.enhanced}" → job ${out.enhanced_job} ${out.statuses[out.enhanced_job]}`)

    // 1 · The script, from a topic, in two sections.
    const costs = () => page.locator('[data-testid="wizard-cost"]').evaluateAll((lis) =>
      lis.map((li) => ({ ...li.dataset, text: li.textContent })))
    const costLines = (n) => page.waitForFunction((k) => document.querySelectorAll('[data-testid="wizard-cost"]').length >= k, n)
    const analysisOk = () => page.waitForFunction(() => document.querySelector('[data-testid="wizard-analysis"]').dataset.state === 'ok')
    const fields = (name) => page.locator(`[data-testid="wizard-section-${name}"]`).evaluateAll((els) => els.map((e) => e.value))
    await byId('wizard-topic').fill('Why the sky is blue')
    await byId('wizard-sections').fill('2')
    await byId('wizard-write').click()
    await byId('wizard-script').waitFor({ state: 'visible' })
    await analysisOk()
    out.script = {
      title: await byId('wizard-title').inputValue(),
      narrations: await fields('narration'),
      image_prompts: await fields('image-prompt'),
      words: Number(await byId('wizard-analysis').getAttribute('data-words')),
    }
    log(`script "${out.script.title}": ${out.script.words} words`)

    // An edit: the second section's narration; the analysis follows (free, no job).
    out.edited_narration = 'Sunlight scatters in the air. Blue light scatters most. So the sky looks blue.'
    await page.locator('[data-testid="wizard-section-narration"]').nth(1).fill(out.edited_narration)
    await page.waitForFunction((w) => {
      const el = document.querySelectorAll('[data-testid="wizard-section-analysis"]')[1]
      return el.dataset.words === String(w) &&
        document.querySelector('[data-testid="wizard-analysis"]').dataset.state === 'ok'
    }, 14)
    out.edited = {
      words: Number(await byId('wizard-analysis').getAttribute('data-words')),
      section_words: await page.locator('[data-testid="wizard-section-analysis"]').evaluateAll((els) => els.map((e) => Number(e.dataset.words))),
      text: await byId('wizard-analysis').textContent(),
    }
    log(`edited: ${out.edited.text}`)

    // Shorter: a script step with the edited script.
    await byId('wizard-shorter').click()
    await costLines(2)
    await page.waitForFunction((t) => document.querySelectorAll('[data-testid="wizard-section-narration"]')[1]?.value === t,
      'Sunlight scatters in the air.')
    await analysisOk()
    out.shorter = {
      narrations: await fields('narration'),
      words: Number(await byId('wizard-analysis').getAttribute('data-words')),
    }
    log(`shorter: ${out.shorter.words} words`)

    // A step that fails (the offline engine knows shorter and longer only), read as words.
    await byId('wizard-instruction').fill('in French')
    await byId('wizard-improve').click()
    await byId('wizard-error').waitFor({ state: 'visible' })
    out.step_error = { code: await byId('wizard-error').getAttribute('data-code'), text: await byId('wizard-error').textContent() }
    out.after_error = { narrations: await fields('narration') }
    log(`failed step: ${out.step_error.text}`)

    // 2 · The voice: heard first (a WAV from the preview), then the narration.
    out.voices = await byId('wizard-voice').evaluate((s) => [...s.options].map((o) => o.value))
    await byId('wizard-voice').selectOption('en-gb')
    await byId('wizard-preview').click()
    await page.waitForFunction(() => {
      const a = document.querySelector('[data-testid="wizard-preview-audio"]')
      return !a.hidden && a.readyState >= 1 && a.duration > 0
    })
    out.preview = await byId('wizard-preview-audio').evaluate((a) => ({
      duration: a.duration, src: a.currentSrc, error: a.error?.code ?? null,
    }))
    log(`preview: ${out.preview.duration} s`)
    await byId('wizard-narrate').click()
    await byId('wizard-pictures-step').waitFor({ state: 'visible' })
    out.narration = {
      seconds: Number(await byId('wizard-narration').getAttribute('data-seconds')),
      sections: await page.locator('[data-testid="wizard-narration-section"]').evaluateAll((lis) => lis.map((li) => li.textContent)),
    }
    log(`narrated: ${out.narration.seconds} s`)

    // 3 · The pictures, shown from signed links.
    await byId('wizard-pictures').click()
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll('[data-testid="wizard-image"]')]
      return imgs.length === 2 && imgs.every((i) => i.complete && i.naturalWidth > 0)
    })
    out.images = await page.locator('[data-testid="wizard-image"]').evaluateAll((imgs) =>
      imgs.map((i) => ({ src: i.src, width: i.naturalWidth, height: i.naturalHeight })))
    log(`pictures: ${JSON.stringify(out.images.map((i) => [i.width, i.height]))}`)

    // 4 · Assembled, then played in the wizard.
    await byId('wizard-assemble').click()
    await byId('wizard-video').waitFor({ state: 'visible', timeout: 120_000 })
    out.video = await byId('wizard-video').evaluate(async (v) => {
      const until = (event) => new Promise((resolve, reject) => {
        v.addEventListener(event, resolve, { once: true })
        v.addEventListener('error', () => reject(new Error(`video error ${v.error?.code}: ${v.error?.message}`)), { once: true })
      })
      if (v.readyState < 1) await until('loadedmetadata')
      v.muted = true
      await v.play()
      const t0 = performance.now()
      while (v.currentTime < 0.3 && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50))
      v.pause()
      return { duration: v.duration, currentTime: v.currentTime, width: v.videoWidth, height: v.videoHeight, src: v.currentSrc, error: v.error?.code ?? null }
    })
    await page.waitForFunction(() => document.querySelector('[data-testid="wizard-assemble-status"]').textContent === 'Done.')
    out.costs = await costs()
    out.video_job = await byId('wizard-costs').evaluate((ol) => ol.lastElementChild.dataset.jobId)
    out.job_cards = await page.locator('[data-testid="job"]').evaluateAll((cards) => cards.map((c) => c.dataset.jobId))
    out.final_progress = { [out.video_job]: await card(out.video_job).getByTestId('job-progress').textContent() }
    log(`video ${out.video_job}: ${JSON.stringify(out.video)}; costs ${out.costs.map((c) => c.text).join(' | ')}`)
    await page.waitForFunction(() => document.querySelector('[data-testid="reserved"]').textContent === '0')
    out.balance_after = Number(await byId('balance').textContent())
    await byId('wizard').scrollIntoViewIfNeeded()
    await page.screenshot({ path: screenshotPath, fullPage: true })
    log(`screenshot ${screenshotPath}`)
  } else if (scenario === 'fallback') {
    // Realtime unreachable (the websocket is closed at once): the page polls instead.
    await byId('sign-in-anon').click()
    await byId('user').waitFor({ state: 'visible' })
    out.user_id = await byId('user').getAttribute('data-user-id')
    out.claim = await claim()
    out.t2v = await generate({
      kind: 'text_to_video', model: 'reference/text-to-video', prompt: 'A kite over a beach', duration: 3,
    })
    out.statuses = { [out.t2v]: await follow(out.t2v) }
    out.final_progress = { [out.t2v]: await card(out.t2v).getByTestId('job-progress').textContent() }
    out.job_sources = { [out.t2v]: await card(out.t2v).getAttribute('data-source') }
    out.video = await play(out.t2v)
    log(`fallback: ${JSON.stringify(out.statuses)} progress ${JSON.stringify(out.progress_seen)}`)
    // A batch of one short job: its progress bar too is fed by polling (GET queue-job/batches?id=).
    await byId('batch-prompts').fill('A single short shot')
    await byId('batch-duration').fill('1')
    await byId('batch-create').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="batch"]').dataset.done === 'true', null, { timeout: 60_000 })
    out.batch_shown = await byId('batch').evaluate((el) => ({
      id: el.dataset.batchId,
      source: el.dataset.source,
      percent: el.querySelector('[data-testid="batch-percent"]').textContent,
      broadcasts: Number(el.querySelector('[data-testid="batch-broadcasts"]').textContent),
      polls: Number(el.querySelector('[data-testid="batch-polls"]').textContent),
    }))
    log(`fallback batch: ${JSON.stringify(out.batch_shown)}`)
    await page.screenshot({ path: screenshotPath, fullPage: true })
  } else {
    // A visitor: signs in anonymously, claims the (smaller) anonymous grant, signs out.
    await byId('sign-in-anon').click()
    await byId('user').waitFor({ state: 'visible' })
    out.anonymous = { id: await byId('user').getAttribute('data-user-id'), label: await byId('user').textContent() }
    out.anonymous.claim = await claim()
    log(`anonymous ${out.anonymous.label}: claimed ${JSON.stringify(out.anonymous.claim)}`)
    await byId('sign-out').click()
    await byId('sign-in').waitFor({ state: 'visible' })

    // Email + password: sign up (confirmed at once locally), sign out, sign in again.
    const email = `web-${Date.now()}@example.test`
    await byId('email').fill(email)
    await byId('password').fill('correct horse battery')
    await byId('sign-up-email').click()
    await userIs(email)
    out.signed_up = { email, id: await byId('user').getAttribute('data-user-id') }
    await byId('sign-out').click()
    await byId('sign-in').waitFor({ state: 'visible' })
    await byId('email').fill(email)
    await byId('password').fill('correct horse battery')
    await byId('sign-in-email').click()
    await userIs(email)
    out.user_id = await byId('user').getAttribute('data-user-id')
    out.jobs_shown_after_switch = await page.locator('[data-testid="job"]').count()
    log(`email user ${email}: signed up, out, in`)

    // Claim the free credits.
    const claimed = await claim()
    Object.assign(out, { balance_before: claimed.before, balance_claimed: claimed.after, claim_disabled: claimed.disabled })
    log(`claimed: balance ${out.balance_before} → ${out.balance_claimed}`)

    // Upload a still to uploads/<uid>/….
    await byId('upload-input').setInputFiles(stillPath)
    await page.waitForFunction(() => document.querySelector('[data-testid="upload-path"]').textContent !== 'none')
    out.upload_path = await byId('upload-path').textContent()
    log(`uploaded ${out.upload_path}`)

    out.t2v = await generate({
      kind: 'text_to_video', model: 'reference/text-to-video',
      prompt: 'A paper boat sails across a calm lake at dawn', duration: 4,
    })
    log(`text-to-video job ${out.t2v}`)
    const following = [follow(out.t2v, 120_000)] // sample each card from its start
    out.i2v = await generate({
      kind: 'image_to_video', model: 'reference/image-to-video',
      prompt: 'A slow push in on the test card', duration: 3,
    })
    log(`image-to-video job ${out.i2v}`)
    following.push(follow(out.i2v, 120_000))
    out.compose = await generate({
      kind: 'compose', model: 'reference/compose', prompt: 'How a paper boat floats',
      duration: 20, sections: 1,
    })
    log(`composed-video job ${out.compose}`)
    const made = [out.t2v, out.i2v, out.compose]
    following.push(follow(out.compose, 120_000))
    const statuses = await Promise.all(following)
    out.statuses = Object.fromEntries(made.map((id, i) => [id, statuses[i]]))
    out.final_progress = {}
    out.job_sources = {}
    for (const id of made) {
      out.final_progress[id] = await card(id).getByTestId('job-progress').textContent()
      out.job_sources[id] = await card(id).getAttribute('data-source')
    }
    out.compose_video = await play(out.compose)
    log(`finished: ${JSON.stringify(out.statuses)} progress ${JSON.stringify(out.progress_seen)}`)

    out.video = await play(out.t2v)
    log(`played: ${JSON.stringify({ duration: out.video.duration, currentTime: out.video.currentTime })}`)
    out.poster_loads = await page.evaluate(async (url) => (await fetch(url)).status, out.video.poster)

    // A long job, canceled while it runs.
    out.canceled = await generate({
      kind: 'text_to_video', model: 'reference/text-to-video',
      prompt: 'A very long sunset over the sea', duration: 30,
    })
    await page.waitForFunction(
      (id) => {
        const el = document.querySelector(`[data-testid="job"][data-job-id="${id}"]`)
        return el && parseInt(el.querySelector('[data-testid="job-progress"]').textContent) > 0
      },
      out.canceled,
      { timeout: 60_000 },
    )
    out.cancel_at = await card(out.canceled).getByTestId('job-progress').textContent()
    await card(out.canceled).getByTestId('job-cancel').click()
    await page.waitForFunction(
      (id) => document.querySelector(`[data-testid="job"][data-job-id="${id}"]`).dataset.status === 'canceled',
      out.canceled,
    )
    out.cancel_button_hidden = await card(out.canceled).getByTestId('job-cancel').isHidden()
    await page.waitForFunction(() => document.querySelector('[data-testid="reserved"]').textContent === '0')
    out.balance_after = Number(await byId('balance').textContent())
    log(`canceled ${out.canceled} at ${out.cancel_at}; balance ${out.balance_after}`)

    // History, two per page: 4 jobs → pages 1 and 2.
    const historyState = async () => ({
      label: await byId('history-page').textContent(),
      rows: await page.locator('[data-testid="history-row"]').evaluateAll((rows) =>
        rows.map((r) => ({ id: r.dataset.jobId, status: r.dataset.status }))),
      prev_disabled: await byId('history-prev').isDisabled(),
      next_disabled: await byId('history-next').isDisabled(),
    })
    await byId('history-limit').selectOption('2')
    await page.waitForFunction(() => document.querySelector('[data-testid="history-page"]').textContent.startsWith('Page 1 of 2'))
    out.history = [await historyState()]
    await byId('history-next').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="history-page"]').dataset.page === '2')
    out.history.push(await historyState())
    await byId('history-prev').click()
    await page.waitForFunction(() => document.querySelector('[data-testid="history-page"]').dataset.page === '1')
    out.history.push(await historyState())
    log(`history: ${out.history.map((h) => h.label).join(' → ')}`)

    await card(out.t2v).scrollIntoViewIfNeeded()
    await page.screenshot({ path: screenshotPath, fullPage: true })
    log(`screenshot ${screenshotPath}`)

    // An error from the API, as the page shows it: 30 s at 1080p costs (2 + 30) × 2.5 = 80
    // credits, more than the 75 left.
    await byId('kind').selectOption('text_to_video')
    await byId('model').selectOption('reference/text-to-video')
    await byId('prompt').fill('How ocean tides work')
    await byId('duration').fill('30')
    await byId('resolution').selectOption('1080p')
    await byId('generate').click()
    await byId('error').waitFor({ state: 'visible' })
    out.error = {
      code: await byId('error').getAttribute('data-code'),
      message: await byId('error-message').textContent(),
      hint: await byId('error-hint').textContent(),
      details: await byId('error-details').textContent(),
      text: await byId('error').innerText(),
    }
    log(`error shown: ${out.error.message} / ${out.error.hint}`)
    await byId('error-close').click()
  }
  if (scenario !== 'workspace') { // (the workspace scenario read them before its reload)
    out.live_source = await byId('live-source').textContent()
    out.live_counts = await byId('live-counts').textContent()
    out.channel_status = await byId('channel-status').textContent()
  }
} catch (err) {
  // What the page looked like when it went wrong, next to the screenshot path.
  const failed = screenshotPath.replace(/\.png$/, '-failure.png')
  await page.screenshot({ path: failed, fullPage: true }).catch(() => {})
  console.error(`failure screenshot: ${failed}`)
  console.error(`page errors: ${JSON.stringify(out.page_errors)}`)
  console.error(`console errors: ${JSON.stringify(out.console_errors.slice(-10))}`)
  throw err
} finally {
  await context.close()
}
out.seconds = (Date.now() - started) / 1000
console.log(JSON.stringify(out))
