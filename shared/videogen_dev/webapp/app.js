// videogen — the reference web app: how a frontend uses this backend with supabase-js.
//
//   Auth       supabase.auth.*                         (local Supabase Auth, /auth/v1)
//   Uploads    supabase.storage.from('uploads')        (local Supabase Storage, /storage/v1)
//   The API    supabase.functions.invoke(name, …)      (/functions/v1/<name>, openapi.yaml)
//   Live jobs  supabase.channel('user:<uid>:jobs')     (Realtime broadcasts, /realtime/v1)
//              with polling of GET generate-video?id= every 2 s while the channel is down.
//
// The workspace around the jobs: the profile's preferences (update-credits/profile), projects
// (queue-job/projects), quotes before each create (queue-job/quote), batches of jobs
// followed as one (queue-job/batches and the `batch_progress` broadcasts), and each running
// job's estimated time left.
//
// Every function answers {"success": true, "data": …} or {"success": false, "error":
// {code, message, details?, hint?}}; api() below returns `data` or throws an ApiError
// carrying the error's fields, and showError() puts them on the page for a person.

const POLL_MS = 2000
const QUOTE_DELAY_MS = 300 // a quote is asked once the form has been still this long
const TERMINAL = new Set(['completed', 'failed', 'canceled'])
const UPLOAD_TYPES = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' }

const $ = (testid, root = document) => root.querySelector(`[data-testid="${testid}"]`)

// ---------------------------------------------------------------------------------------
// The client. The page is served by the project itself, so SUPABASE_URL is its origin;
// config.json holds the publishable key (safe in a browser; never a secret key).
// ---------------------------------------------------------------------------------------
const config = await fetch('config.json')
  .then((r) => r.json())
  .catch(() => ({}))
if (!window.supabase || !config.publishable_key) {
  showError({
    message: 'The page could not load supabase-js or its config from this server.',
    hint: 'Run `make setup` (it installs node_modules), then reload.',
  })
  throw new Error('no supabase-js or config')
}
const { createClient } = window.supabase // the UMD build loaded by index.html
const supabase = createClient(window.location.origin, config.publishable_key)

const state = {
  user: null, // the signed-in auth user
  upload: null, // path of the last upload in bucket `uploads`: `<uid>/<file>`
  models: [], // the catalogue (GET queue-job/models)
  jobs: new Map(), // job id → card {el, job, lastEventId, finished}
  channel: null,
  channelStatus: 'CLOSED',
  pollTimer: null,
  polling: false,
  counts: { realtime: 0, polling: 0 },
  historyPage: 1,
  historySeq: 0,
  profile: null, // GET update-credits/profile
  projects: [], // the user's projects (GET queue-job/projects)
  projectId: '', // the selected one ('' = none: all jobs, new ones in no project)
  batches: new Map(), // batch id → its latest progress (BatchProgress in openapi.yaml)
  batchId: null, // the batch the page follows
  batchCounts: { realtime: 0, polling: 0 },
  quoteSeq: { job: 0, batch: 0 },
  quoteTimer: null,
}

// ---------------------------------------------------------------------------------------
// Calling the functions
// ---------------------------------------------------------------------------------------

/** An error answered in the envelope (or a network failure), with what a person needs. */
class ApiError extends Error {
  constructor({ code, message, hint = null, details = null, status = null }) {
    super(message)
    Object.assign(this, { code, hint, details, status })
  }
}

/** supabase-js's FunctionsHttpError carries the Response: its body is the envelope. */
async function toApiError(error) {
  const response = error?.context
  if (response && typeof response.json === 'function') {
    const body = await response.json().catch(() => null)
    if (body?.error?.message) return new ApiError({ ...body.error, status: response.status })
    return new ApiError({ code: `HTTP_${response.status}`, message: `The server answered ${response.status}.` })
  }
  return new ApiError({
    code: 'NETWORK',
    message: 'Could not reach the server.',
    hint: 'Is the local stack running? Start it with `make up`.',
  })
}

/** A random uuid (crypto.randomUUID needs a secure context: localhost is one, a LAN IP is not). */
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID()
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

/**
 * Call a function: its envelope's `data`, or throw an ApiError. supabase-js sends the
 * session's access token (or the publishable key when signed out). Every POST gets its
 * own Idempotency-Key, so a retried request can never make a second job.
 */
async function api(name, { method = 'GET', query = null, body = undefined } = {}) {
  const qs = query ? `?${new URLSearchParams(query)}` : ''
  const headers = method === 'POST' ? { 'Idempotency-Key': uuid() } : {}
  const { data, error } = await supabase.functions.invoke(`${name}${qs}`, { method, body, headers })
  if (error) throw await toApiError(error)
  return data.data
}

// ---------------------------------------------------------------------------------------
// Errors on the page: the message, the hint, field details — never raw JSON.
// ---------------------------------------------------------------------------------------
function showError(err) {
  console.warn(err)
  const box = $('error')
  box.dataset.code = err.code ?? err.name ?? 'ERROR'
  $('error-message').textContent = err.message || String(err)
  $('error-hint').textContent = err.hint ?? ''
  $('error-hint').hidden = !err.hint
  const details = Array.isArray(err.details) ? err.details : []
  $('error-details').replaceChildren(
    ...details.map((d) => {
      const li = document.createElement('li')
      li.textContent = d.field
        ? `${d.field}: ${d.message ?? d.type ?? ''}`
        : d.message ?? Object.entries(d).map(([k, v]) => `${k}: ${v}`).join(', ')
      return li
    }),
  )
  box.hidden = false
}
$('error-close').onclick = () => {
  $('error').hidden = true
}

/** Whether a button may be used now; guarded() restores this when its handler ends. */
function allow(button, on) {
  button.dataset.allowed = String(on)
  if (button.getAttribute('aria-busy') !== 'true') button.disabled = !on
}

/** Wrap a handler: its button is off while it runs; what went wrong is shown. */
function guarded(fn) {
  return async (event) => {
    const target = event?.submitter ?? event?.currentTarget
    const button = target instanceof HTMLButtonElement ? target : null
    button?.setAttribute('aria-busy', 'true')
    if (button) button.disabled = true
    try {
      $('error').hidden = true
      await fn(event)
    } catch (err) {
      showError(err)
    } finally {
      button?.removeAttribute('aria-busy')
      if (button) button.disabled = button.dataset.allowed === 'false'
    }
  }
}

// ---------------------------------------------------------------------------------------
// Auth: anonymous, or email + password (the local Auth API confirms sign-ups at once).
// ---------------------------------------------------------------------------------------
async function authCall(promise) {
  const { data, error } = await promise
  if (error) throw error // AuthError: its message is written for people
  return data
}

$('sign-in-anon').onclick = guarded(() => authCall(supabase.auth.signInAnonymously()))

$('email-form').onsubmit = guarded(async (event) => {
  event.preventDefault()
  const form = $('email-form')
  const credentials = { email: form.email.value.trim(), password: form.password.value }
  if (event.submitter?.value === 'sign-up') {
    const data = await authCall(supabase.auth.signUp(credentials))
    if (!data.session) throw new Error('Check your inbox to confirm the address, then sign in.')
  } else {
    await authCall(supabase.auth.signInWithPassword(credentials))
  }
})

$('sign-out').onclick = guarded(() => authCall(supabase.auth.signOut()))

// Runs inside supabase-js's auth lock: never await a Supabase call in it, defer instead.
supabase.auth.onAuthStateChange((event, session) => {
  setTimeout(() => onSession(event, session).catch(showError), 0)
})

async function onSession(event, session) {
  document.body.dataset.ready = 'true'
  if (!session) return signedOut()
  if (event === 'TOKEN_REFRESHED') {
    await supabase.realtime.setAuth(session.access_token) // the channel keeps working
    return
  }
  if (state.user?.id === session.user.id) return // INITIAL_SESSION and SIGNED_IN both come
  state.user = session.user
  const who = $('user')
  who.textContent = session.user.is_anonymous
    ? `anonymous user ${session.user.id.slice(0, 8)}…`
    : session.user.email
  who.dataset.userId = session.user.id
  $('session').hidden = false
  $('sign-in').hidden = true
  $('signed-in').hidden = false
  await startLive(session)
  const remembered = localStorage.getItem(projectKey()) ?? ''
  await Promise.all([loadCredits(), loadProfile(), loadProjects(remembered)])
  await loadHistory(1, { follow: true }) // of the selected project
  quoteSoon()
}

function signedOut() {
  stopLive()
  state.user = null
  state.upload = null
  state.jobs.clear()
  $('jobs').replaceChildren()
  Object.assign(state, { profile: null, projects: [], projectId: '', batchId: null })
  state.batches.clear()
  state.batchCounts = { realtime: 0, polling: 0 }
  $('batch-broadcasts').textContent = $('batch-polls').textContent = '0'
  $('batch').hidden = true
  $('quote').textContent = ''
  $('batch-quote').textContent = ''
  applyPreferences({ theme: 'system', language: 'en' })
  $('upload-path').textContent = 'none'
  $('upload-preview').hidden = true
  $('session').hidden = true
  $('signed-in').hidden = true
  $('sign-in').hidden = false
}

// ---------------------------------------------------------------------------------------
// Credits: GET update-credits (balance, reserved, whether the free grant was claimed);
// POST {"action": "claim_initial_grant"} claims it once.
// ---------------------------------------------------------------------------------------
async function loadCredits() {
  const credits = await api('update-credits', { query: { limit: 1 } })
  $('balance').textContent = credits.balance
  $('reserved').textContent = credits.reserved
  allow($('claim'), !credits.initial_grant_claimed)
  $('claim').textContent = credits.initial_grant_claimed ? 'Free credits claimed' : 'Claim free credits'
}

$('claim').onclick = guarded(async () => {
  try {
    await api('update-credits', { method: 'POST', body: { action: 'claim_initial_grant' } })
  } finally {
    await loadCredits() // claimed (or claimed already, 409): the button stays off
  }
})

// ---------------------------------------------------------------------------------------
// Preferences: GET update-credits/profile {display_name, language, theme, tier, …};
// PATCH it with {theme?, language?, display_name?} (the tier is the service's: 422).
// ---------------------------------------------------------------------------------------
const profileForm = $('profile-form')

/** The theme styles the page (style.css, html[data-theme]); the language is its lang. */
function applyPreferences({ theme, language }) {
  document.documentElement.dataset.theme = theme
  document.documentElement.lang = language
}

async function loadProfile() {
  showProfile(await api('update-credits/profile'))
}

function showProfile(profile) {
  state.profile = profile
  const language = profileForm.language
  if (![...language.options].some((o) => o.value === profile.language)) {
    language.add(new Option(profile.language, profile.language)) // a tag set elsewhere
  }
  language.value = profile.language
  profileForm.theme.value = profile.theme
  $('tier').textContent = profile.tier
  applyPreferences(profile)
}

// A change is previewed at once, and kept once saved.
profileForm.onchange = () => {
  applyPreferences({ theme: profileForm.theme.value, language: profileForm.language.value })
  $('profile-status').textContent = 'not saved yet'
}

profileForm.onsubmit = guarded(async (event) => {
  event.preventDefault()
  const body = { theme: profileForm.theme.value, language: profileForm.language.value }
  showProfile(await api('update-credits/profile', { method: 'PATCH', body }))
  $('profile-status').textContent = 'saved'
})

// ---------------------------------------------------------------------------------------
// Projects: GET queue-job/projects (a page, each with its jobs per status), POST {title}
// → 201, PATCH ?id= {title}, DELETE ?id= (its jobs stay, in no project). The selected one
// files new jobs (project_id on the create) and filters the history (?project_id=).
// ---------------------------------------------------------------------------------------
const projectKey = () => `videogen.project.${state.user.id}` // remembered per user

async function loadProjects(select = state.projectId) {
  const page = await api('queue-job/projects', { query: { limit: 100 } })
  state.projects = page.items
  $('project').replaceChildren(
    new Option('No project (all jobs)', ''),
    ...page.items.map((p) => new Option(p.title, p.id)),
  )
  selectProject(page.items.some((p) => p.id === select) ? select : '')
}

function selectProject(id) {
  state.projectId = id
  $('project').value = id
  localStorage.setItem(projectKey(), id)
  const project = state.projects.find((p) => p.id === id)
  allow($('project-rename'), Boolean(project))
  allow($('project-delete'), Boolean(project))
  $('history-scope').textContent = project ? `(project “${project.title}”)` : '(all jobs)'
  $('project-info').textContent = project
    ? `${countsText(project.jobs) || 'No jobs yet'}. New jobs are filed here.`
    : 'New jobs are filed in no project.'
}

/** {completed: 2, queued: 1} → "2 completed, 1 queued". */
function countsText(counts) {
  return Object.entries(counts).map(([status, n]) => `${n} ${status}`).join(', ')
}

function projectTitle() {
  const title = $('project-title').value.trim()
  if (!title) throw new Error('Type a title for the project first.')
  return title
}

$('project').onchange = guarded(async () => {
  selectProject($('project').value)
  await loadHistory(1)
})

$('project-create').onclick = guarded(async () => {
  const project = await api('queue-job/projects', { method: 'POST', body: { title: projectTitle() } })
  $('project-title').value = ''
  await loadProjects(project.id)
  await loadHistory(1)
})

$('project-rename').onclick = guarded(async () => {
  const body = { title: projectTitle() }
  await api('queue-job/projects', { method: 'PATCH', query: { id: state.projectId }, body })
  $('project-title').value = ''
  await loadProjects()
})

$('project-delete').onclick = guarded(async () => {
  const project = state.projects.find((p) => p.id === state.projectId)
  if (!project || !confirm(`Delete the project “${project.title}”? Its jobs stay.`)) return
  const gone = await api('queue-job/projects', { method: 'DELETE', query: { id: project.id } })
  await loadProjects('')
  $('project-info').textContent =
    `Deleted “${gone.project.title}”: its ${gone.jobs_ungrouped} jobs stay, in no project.`
  await loadHistory(1)
})

// ---------------------------------------------------------------------------------------
// Upload: your own folder of bucket `uploads` (`<uid>/…`; the storage policies refuse any
// other). A job names the path; the API checks the picture before reserving credits.
// ---------------------------------------------------------------------------------------
$('upload-input').onchange = guarded(async (event) => {
  const file = event.target.files[0]
  if (!file) return
  const ext = UPLOAD_TYPES[file.type]
  if (!ext) throw new Error('Pick a PNG, JPEG or WebP picture.')
  const path = `${state.user.id}/${uuid()}.${ext}`
  const { data, error } = await supabase.storage
    .from('uploads')
    .upload(path, file, { contentType: file.type, upsert: false })
  if (error) throw error
  state.upload = data.path
  $('upload-path').textContent = data.path
  const preview = $('upload-preview')
  preview.src = URL.createObjectURL(file)
  preview.hidden = false
})

// ---------------------------------------------------------------------------------------
// The catalogue and new jobs. GET queue-job/models lists every model; the `reference/*`
// ones run on the local workers (`videogen up`), the others call paid providers.
// ---------------------------------------------------------------------------------------
const form = $('generate-form')

async function loadModels() {
  state.models = await api('queue-job/models')
  fillModels()
}

function fillModels() {
  const kind = form.kind.value
  const models = state.models
    .filter((m) => m.job_type === kind)
    .sort((a, b) => Number(b.id.startsWith('reference/')) - Number(a.id.startsWith('reference/')))
  form.model.replaceChildren(...models.map((m) => new Option(`${m.name} — ${m.id}`, m.id)))
  for (const el of form.querySelectorAll('[data-kind]')) el.hidden = el.dataset.kind !== kind
  describeModel()
  const t2v = state.models.filter((m) => m.job_type === 'text_to_video')
  t2v.sort((a, b) => Number(b.id.startsWith('reference/')) - Number(a.id.startsWith('reference/')))
  const keep = batchForm.model.value
  batchForm.model.replaceChildren(...t2v.map((m) => new Option(`${m.name} — ${m.id}`, m.id)))
  if (keep) batchForm.model.value = keep
}

function describeModel() {
  const model = state.models.find((m) => m.id === form.model.value)
  if (!model) return
  const duration = form.duration
  duration.min = model.min_duration_s
  duration.max = model.max_duration_s
  const now = Number(duration.value)
  if (now < model.min_duration_s || now > model.max_duration_s) duration.value = model.default_duration_s
  $('model-info').textContent =
    `${model.description} ${model.min_duration_s}–${model.max_duration_s} s; ` +
    `${model.credits_base} + ${model.credits_per_second} credits per second (more above 480p).`
}

form.kind.onchange = fillModels
form.model.onchange = describeModel

/** The form as a GenerateVideoRequest (openapi.yaml); throws what is missing. */
function generateBody() {
  const kind = form.kind.value
  const body = {
    model: form.model.value,
    prompt: form.prompt.value.trim(),
    duration: Number(form.duration.value),
    resolution: form.resolution.value,
    aspect_ratio: form.aspect_ratio.value,
  }
  if (kind === 'image_to_video') {
    if (!state.upload) throw new Error('Upload a still first: image-to-video animates it.')
    body.image_path = state.upload
  }
  if (kind === 'compose') {
    body.sections = Number(form.sections.value)
    if (form.use_upload.checked) {
      if (!state.upload) throw new Error('Upload a still first, or untick “Show my upload”.')
      body.images = [state.upload] // one per section; the rest get title cards
    }
  }
  if (state.projectId) body.project_id = state.projectId // filed in the selected project
  return body
}

/** The same request as a quote item {model, params}: generate-video's body is flat. */
function jobItem() {
  const { model, project_id: _, ...params } = generateBody()
  return { model, params }
}

form.onsubmit = guarded(async (event) => {
  event.preventDefault()
  const body = generateBody()
  await showQuote($('quote'), [jobItem()], 'job') // what it costs, right before it is made
  // 202: queued and routed; 200: a short composed video rendered at once (already final).
  const job = await api('generate-video', { method: 'POST', body })
  followJob(job)
  await Promise.all([loadCredits(), loadHistory(1)])
  quoteSoon()
})

// ---------------------------------------------------------------------------------------
// Quotes: POST queue-job/quote {items: [{model, params}]} → each item's cost, the queue
// ahead of it and its estimate (a composed video: whether it renders at once), the total,
// your balance and whether it covers the total. Nothing is created; asked as a form changes.
// ---------------------------------------------------------------------------------------
async function showQuote(line, items, which) {
  const seq = ++state.quoteSeq[which] // answers can arrive out of order: show the latest ask
  let text, data
  try {
    const quote = await api('queue-job/quote', { method: 'POST', body: { items } })
    const sync = quote.items.every((i) => i.sync)
    const seconds = Math.max(
      ...quote.items.map((i) => (i.sync ? Math.ceil(i.estimated_render_seconds) : i.estimated_seconds_left)),
    )
    const jobs = items.length > 1 ? ` for ${items.length} jobs` : ''
    const when = sync ? `rendered at once in ~${seconds} s` : `ready in ~${seconds} s`
    text = `Costs ${quote.total} credits${jobs}, ${when}, you have ${quote.balance}.`
    if (!quote.affordable) text += ' Not enough credits.'
    data = { state: quote.affordable ? 'ok' : 'short', total: quote.total, seconds, balance: quote.balance }
  } catch (err) {
    text = `No quote: ${err.message}` // the create would be refused the same way
    data = { state: 'error', total: '', seconds: '', balance: '' }
  }
  if (seq !== state.quoteSeq[which]) return
  line.textContent = text
  Object.assign(line.dataset, data)
}

/** Quote both forms once they have been still for QUOTE_DELAY_MS. */
function quoteSoon() {
  clearTimeout(state.quoteTimer)
  state.quoteTimer = setTimeout(() => {
    if (!state.user) return
    const forms = [
      [$('quote'), () => [jobItem()], 'job'],
      [$('batch-quote'), batchItems, 'batch'],
    ]
    for (const [line, items, which] of forms) {
      try {
        showQuote(line, items(), which) // never throws: a refusal is shown on the line
      } catch (err) {
        line.textContent = err.message // e.g. "Upload a still first"
        line.dataset.state = 'error'
      }
    }
  }, QUOTE_DELAY_MS)
}
form.addEventListener('input', quoteSoon)
form.addEventListener('change', quoteSoon)

// ---------------------------------------------------------------------------------------
// Batches: POST queue-job/batches {items: [{model, params}] (1..20), project_id?, title?}
// → 202 the batch with its jobs, all reserved together — or 402 with {required, balance}
// and nothing made. Each change of one of its jobs is also a `batch_progress` broadcast
// (the batch's counts, finished, percent, done); GET queue-job/batches?id= is the same read;
// DELETE queue-job/batches?id= cancels every unfinished job of it.
// ---------------------------------------------------------------------------------------
const batchForm = $('batch-form')

/** One text-to-video item per non-empty line. */
function batchItems() {
  const prompts = batchForm.prompts.value.split('\n').map((line) => line.trim()).filter(Boolean)
  if (prompts.length === 0) throw new Error('Write one prompt per line.')
  if (prompts.length > 20) throw new Error(`A batch has at most 20 jobs (this one has ${prompts.length}).`)
  const params = { duration: Number(batchForm.duration.value), resolution: batchForm.resolution.value }
  return prompts.map((prompt) => ({ model: batchForm.model.value, params: { prompt, ...params } }))
}

batchForm.addEventListener('input', quoteSoon)
batchForm.addEventListener('change', quoteSoon)

batchForm.onsubmit = guarded(async (event) => {
  event.preventDefault()
  const items = batchItems()
  await showQuote($('batch-quote'), items, 'batch')
  const body = { items, title: batchForm.title.value.trim() || null }
  if (state.projectId) body.project_id = state.projectId
  let batch
  try {
    batch = await api('queue-job/batches', { method: 'POST', body })
  } catch (err) {
    throw shortOfCredits(err)
  }
  const { jobs, ...progress } = batch
  for (const job of jobs) followJob(job)
  showBatch(progress, 'answer', { follow: true })
  await Promise.all([loadCredits(), loadHistory(1), loadProjects()])
  quoteSoon()
})

/** A batch's 402 as a person reads it: the details carry {required, balance, reserved, items}. */
function shortOfCredits(err) {
  const [need] = Array.isArray(err.details) ? err.details : []
  if (err.code !== 'INSUFFICIENT_CREDITS' || need?.required == null) return err
  return new ApiError({
    code: err.code,
    status: err.status,
    hint: err.hint,
    message: `This batch needs ${need.required} credits, you have ${need.balance}.`,
  })
}

/**
 * Show a batch's progress; `source` (answer, realtime, polling) delivered it. Answers and
 * broadcasts race, and a batch only moves forward (a finished job counts 100 %): the
 * furthest state seen is kept. A broadcast of another batch is followed only when the one
 * shown is done (a batch made in another tab, say).
 */
function showBatch(progress, source, { follow = false } = {}) {
  const furthest = (b) => [b.done ? 1 : 0, b.finished, b.percent]
  const seen = state.batches.get(progress.id)
  if (seen && compare(furthest(seen), furthest(progress)) > 0) return
  state.batches.set(progress.id, progress)
  const shown = state.batches.get(state.batchId)
  if (progress.id !== state.batchId && !follow && shown && !shown.done) return
  state.batchId = progress.id

  const el = $('batch')
  el.hidden = false
  Object.assign(el.dataset, { batchId: progress.id, done: progress.done, source })
  $('batch-name').textContent = progress.title || `Batch ${progress.id.slice(0, 8)}…`
  const status = !progress.done ? 'running'
    : progress.counts.canceled ? 'canceled' : progress.counts.failed ? 'failed' : 'completed'
  $('batch-status').textContent = status
  $('batch-status').className = `badge ${status}`
  $('batch-progress-bar').value = progress.percent
  $('batch-percent').textContent = `${progress.percent}%`
  $('batch-summary').textContent =
    `${progress.finished} of ${progress.jobs_total} finished (${countsText(progress.counts)}) · ` +
    `${progress.credits_used} of ${progress.cost} credits used`
  $('batch-source').textContent = source
  allow($('batch-cancel'), !progress.done)
}

/** Compare two tuples of numbers, left to right. */
function compare(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}

function countBatchUpdate(source) {
  state.batchCounts[source] += 1
  $(source === 'realtime' ? 'batch-broadcasts' : 'batch-polls').textContent = state.batchCounts[source]
}

$('batch-cancel').onclick = guarded(async () => {
  // {batch: its progress, workers_notified}; each job's cancel also arrives on its card.
  const { batch } = await api('queue-job/batches', { method: 'DELETE', query: { id: state.batchId } })
  showBatch(batch, 'answer')
  await loadCredits()
})

// ---------------------------------------------------------------------------------------
// Live updates. Every job change is a broadcast on the private topic `user:<uid>:jobs`
// whose payload is the job_events row {job_id, event, status, progress, attempt, data};
// a job of a batch also sends `batch_progress` with the batch's progress (no job_id).
// While the channel is not SUBSCRIBED, the page polls each running job, and the batch it
// follows, every 2 s.
// ---------------------------------------------------------------------------------------
async function startLive(session) {
  stopLive()
  await supabase.realtime.setAuth(session.access_token) // private topics need the user's token
  state.channel = supabase
    .channel(`user:${session.user.id}:jobs`, { config: { private: true } })
    .on('broadcast', { event: '*' }, ({ event, payload }) => {
      if (event === 'batch_progress') {
        countBatchUpdate('realtime')
        showBatch(payload, 'realtime')
      } else {
        onBroadcast(payload).catch(showError) // job_created, job_progress, job_completed, …
      }
    })
    .subscribe((status, err) => {
      state.channelStatus = status
      $('channel-status').textContent = err ? `${status}: ${err.message}` : status
      // Catch up on whatever changed while the channel was down.
      if (status === 'SUBSCRIBED') pollJobs({ force: true })
    })
  state.pollTimer = setInterval(() => pollJobs(), POLL_MS)
}

function stopLive() {
  if (state.channel) supabase.removeChannel(state.channel)
  state.channel = null
  state.channelStatus = 'CLOSED'
  $('channel-status').textContent = 'CLOSED'
  clearInterval(state.pollTimer)
}

function countUpdate(source) {
  state.counts[source] += 1
  const { realtime, polling } = state.counts
  $('live-counts').textContent = `${realtime} broadcasts, ${polling} polls`
}

async function onBroadcast(payload) {
  if (!payload?.job_id) return
  countUpdate('realtime')
  const card = state.jobs.get(payload.job_id)
  if (!card) {
    // A job made elsewhere (another tab, a backend): follow it here too.
    followJob(await api('generate-video', { query: { id: payload.job_id } }), 'realtime')
    return
  }
  if (payload.id <= card.lastEventId) return // already seen (a poll got there first)
  card.lastEventId = payload.id
  const job = {
    ...card.job,
    status: payload.status,
    progress: payload.progress,
    attempt: payload.attempt,
    progress_message: payload.data?.message ?? card.job.progress_message,
    error_code: payload.data?.error_code ?? card.job.error_code,
    error_message: payload.data?.error_message ?? card.job.error_message,
    updated_at: payload.created_at, // the event is written with the change it records
    // A broadcast carries no estimate; applyJob() works one out from the pace so far.
    started_at: card.job.started_at ?? (payload.status === 'processing' ? payload.created_at : null),
    estimated_seconds_left: null,
  }
  applyJob(card, job, 'realtime')
}

async function pollJobs({ force = false } = {}) {
  if ((!force && state.channelStatus === 'SUBSCRIBED') || state.polling) return
  state.polling = true
  try {
    for (const card of state.jobs.values()) {
      if (card.finished) continue
      const job = await api('generate-video', { query: { id: card.job.id } })
      countUpdate('polling')
      applyJob(card, job, 'polling')
    }
    const batch = state.batches.get(state.batchId)
    if (batch && !batch.done) {
      const { jobs: _, ...progress } = await api('queue-job/batches', { query: { id: batch.id } })
      countBatchUpdate('polling')
      showBatch(progress, 'polling')
    }
  } catch (err) {
    showError(err)
  } finally {
    state.polling = false
  }
}

// ---------------------------------------------------------------------------------------
// Job cards: status, progress, cancel (DELETE queue-job?id=…), and the finished video.
// ---------------------------------------------------------------------------------------
function followJob(job, source = null) {
  let card = state.jobs.get(job.id)
  if (!card) {
    const el = document.getElementById('job-template').content.firstElementChild.cloneNode(true)
    el.dataset.jobId = job.id
    card = { el, job, lastEventId: 0, finished: false, relinked: false, etaAt: null }
    state.jobs.set(job.id, card)
    $('job-cancel', el).onclick = guarded(() => cancelJob(card))
    $('job-video', el).onerror = () => relink(card)
    $('jobs').prepend(el)
  }
  applyJob(card, job, source)
}

/**
 * Show a new state of the job; `source` (realtime, polling) delivered it. Answers and
 * broadcasts race (a `created` broadcast can beat the POST's own answer): a state older
 * than the one shown is dropped.
 */
function applyJob(card, job, source) {
  const before = card.job
  if (Date.parse(job.updated_at) < Date.parse(before.updated_at)) return
  card.job = job
  for (const e of job.events ?? []) card.lastEventId = Math.max(card.lastEventId, e.id)
  // When it should be done: a read says (estimated_seconds_left, counted from now, so the
  // browser's clock does not matter); after a broadcast the page estimates as the server
  // does (private.job_estimate): the time it has run × what is left / what is done.
  if (job.estimated_seconds_left != null) {
    card.etaAt = Date.now() + job.estimated_seconds_left * 1000
  } else if (job.status === 'processing' && job.progress >= 5 && job.started_at) {
    const ran = Date.parse(job.updated_at) - Date.parse(job.started_at) // both server times
    card.etaAt = Date.now() + (ran * (100 - job.progress)) / job.progress
  }
  if (source && (before.status !== job.status || before.progress !== job.progress)) {
    card.el.dataset.source = source
    $('live-source').textContent = source
  }
  render(card)
  if (TERMINAL.has(job.status) && !card.finished) {
    card.finished = true
    finished(card).catch(showError)
  }
}

/** A job just finished: links come with a read of the job (a broadcast carries none). */
async function finished(card) {
  if (card.job.status === 'completed' && !card.job.output?.video_url) {
    card.job = await api('generate-video', { query: { id: card.job.id } })
    render(card)
  }
  await Promise.all([loadCredits(), loadHistory(), state.projectId ? loadProjects() : null])
  quoteSoon() // the balance changed
}

function render(card) {
  const { el, job } = card
  el.dataset.status = job.status
  $('job-model', el).textContent = job.model_id
  const credits =
    job.status === 'completed' ? `${job.credits_used ?? job.cost} credits charged`
      : TERMINAL.has(job.status) ? `${job.cost} credits released` : `${job.cost} credits reserved`
  $('job-id', el).textContent = `${job.id.slice(0, 8)}… · ${credits}`
  const status = $('job-status', el)
  status.textContent = job.queue_position ? `${job.status} (#${job.queue_position} in line)` : job.status
  status.className = `badge ${job.status}`
  $('job-progress-bar', el).value = job.progress
  $('job-progress', el).textContent = `${job.progress}%`
  $('job-eta', el).textContent = etaText(card)
  const out = job.output
  $('job-message', el).textContent =
    job.status === 'completed' && out
      ? `${out.duration_s} s, ${out.width}×${out.height}`
      : TERMINAL.has(job.status) ? '' : job.progress_message ?? ''
  $('job-cancel', el).hidden = TERMINAL.has(job.status)
  const error = $('job-error', el)
  error.hidden = job.status !== 'failed'
  error.textContent = job.status === 'failed' ? `${job.error_message ?? 'It failed.'} (${job.error_code})` : ''
  const video = $('job-video', el)
  if (job.status === 'completed' && out?.video_url && video.dataset.path !== out.video_path) {
    video.dataset.path = out.video_path
    video.poster = out.thumbnail_url ?? ''
    video.src = out.video_url // signed for SIGNED_URL_EXPIRES_SECONDS (out.links_expire_at)
    video.hidden = false
  }
}

/** "~12 s left" (or minutes), counting down between updates; nothing once finished. */
function etaText(card) {
  if (TERMINAL.has(card.job.status) || card.etaAt == null) return ''
  const left = Math.ceil((card.etaAt - Date.now()) / 1000)
  if (left < 1) return 'any moment now'
  return left < 120 ? `~${left} s left` : `~${Math.round(left / 60)} min left`
}

setInterval(() => {
  for (const card of state.jobs.values()) if (!card.finished) $('job-eta', card.el).textContent = etaText(card)
}, 1000)

async function cancelJob(card) {
  // DELETE answers {job, worker_notified}: credits released, the worker told to stop.
  const { job } = await api('queue-job', { method: 'DELETE', query: { id: card.job.id } })
  applyJob(card, job, null)
}

/** A signed link expired (a tab left open): read the job again for fresh ones, once. */
async function relink(card) {
  if (card.relinked || card.job.status !== 'completed') return
  card.relinked = true
  const job = await api('generate-video', { query: { id: card.job.id } })
  $('job-video', card.el).dataset.path = ''
  applyJob(card, job, null)
}

// ---------------------------------------------------------------------------------------
// History: GET generate-video?page=&limit= — newest first, with page/limit/total/has_next.
// ---------------------------------------------------------------------------------------
async function loadHistory(page = state.historyPage, { follow = false } = {}) {
  const seq = ++state.historySeq // answers can arrive out of order: show the latest ask
  const limit = Number($('history-limit').value)
  const query = { page, limit }
  if (state.projectId) query.project_id = state.projectId // only the selected project's
  const list = await api('generate-video', { query })
  if (seq !== state.historySeq) return
  if (list.items.length === 0 && list.page > 1) return loadHistory(list.page - 1)
  state.historyPage = list.page
  const pages = Math.max(1, Math.ceil(list.total / list.limit))
  $('history-page').textContent = `Page ${list.page} of ${pages} (${list.total} jobs)`
  $('history-page').dataset.page = list.page
  allow($('history-prev'), list.page > 1)
  allow($('history-next'), list.has_next)
  $('history').replaceChildren(...list.items.map(historyRow))
  // Jobs still running when the page (re)loads are followed live too.
  if (follow) for (const job of list.items) if (!TERMINAL.has(job.status)) followJob(job)
}

function historyRow(job) {
  const tr = document.createElement('tr')
  tr.dataset.testid = 'history-row'
  tr.dataset.jobId = job.id
  tr.dataset.status = job.status
  const cells = [
    new Date(job.created_at).toLocaleString(),
    job.model_id,
    job.status === 'failed' ? `failed: ${job.error_message ?? job.error_code}` : job.status,
    // Credits: captured when it completed, released when it failed or was canceled.
    job.status === 'completed' ? job.credits_used ?? job.cost
      : TERMINAL.has(job.status) ? job.credits_used ?? 0 : `${job.cost} reserved`,
  ]
  for (const text of cells) tr.insertCell().textContent = text
  const action = tr.insertCell()
  if (job.output?.video_url) {
    const a = document.createElement('a')
    a.href = job.output.video_url
    a.target = '_blank'
    a.rel = 'noopener'
    a.textContent = 'watch'
    action.append(a)
  } else if (!TERMINAL.has(job.status)) {
    const b = document.createElement('button')
    b.type = 'button'
    b.textContent = 'Follow'
    b.onclick = () => followJob(job)
    action.append(b)
  }
  return tr
}

$('history-prev').onclick = guarded(() => loadHistory(state.historyPage - 1))
$('history-next').onclick = guarded(() => loadHistory(state.historyPage + 1))
$('history-limit').onchange = guarded(() => loadHistory(1))
$('history-refresh').onclick = guarded(() => loadHistory())

// ---------------------------------------------------------------------------------------
// Start: the catalogue (the publishable key is enough), then the session, if any.
// ---------------------------------------------------------------------------------------
// (onAuthStateChange above reports the stored session, or none, as INITIAL_SESSION.)
loadModels().catch(showError)
