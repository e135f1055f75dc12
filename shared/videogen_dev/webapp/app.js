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
// The creator's tools: prompt enhancement (queue-job/enhance) in the "Make a video" form, and
// the wizard step by step — script, narration, pictures, each a job of its own (POST
// queue-job, answered finished), edited in between, then assembled by generate-video.
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
  enhancement: null, // the last POST queue-job/enhance answer, with `used` once chosen
  stepJobs: new Set(), // wizard step jobs: shown in the wizard, not as job cards
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
async function api(name, { method = 'GET', query = null, body = undefined, key = null } = {}) {
  const qs = query ? `?${new URLSearchParams(query)}` : ''
  const headers = method === 'POST' ? { 'Idempotency-Key': key ?? uuid() } : {}
  const { data, error } = await supabase.functions.invoke(`${name}${qs}`, { method, body, headers })
  if (error) throw await toApiError(error)
  return data.data
}

/**
 * POST a function whose answer is not JSON (the voice preview's audio/wav): a Blob.
 * supabase-js reads such a body as text, which garbles bytes, so this is a plain fetch
 * with the same headers supabase-js sends (the user's token and the publishable key).
 */
async function apiBlob(name, body) {
  const { data } = await supabase.auth.getSession()
  let response
  try {
    response = await fetch(`${window.location.origin}/functions/v1/${name}`, {
      method: 'POST',
      headers: {
        apikey: config.publishable_key,
        Authorization: `Bearer ${data.session?.access_token ?? config.publishable_key}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify(body),
    })
  } catch (err) {
    throw await toApiError(err)
  }
  if (!response.ok) throw await toApiError({ context: response })
  return response.blob()
}

// ---------------------------------------------------------------------------------------
// Errors on the page: the message, the hint, field details — never raw JSON.
// ---------------------------------------------------------------------------------------
/**
 * Put an error box where the user's eyes are: right under the row or form of the button
 * they pressed, scrolled into view. With no button (a failure in the background), the
 * global box goes back to the top of the page, where it stays in view (sticky).
 */
function placeError(box, button) {
  const anchor = button?.isConnected ? button.closest('.row, form, header') ?? button : null
  if (anchor) {
    anchor.after(box)
    box.dataset.place = 'near'
  } else if (box === $('error')) {
    document.querySelector('main').before(box)
    box.dataset.place = 'top'
  }
  box.hidden = false
  if (anchor) box.scrollIntoView({ block: 'nearest' })
}

function showError(err, button = null) {
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
  placeError(box, button)
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
      showError(err, button)
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
  $('batch-polls').title = ''
  $('batch').hidden = true
  $('quote').textContent = ''
  $('batch-quote').textContent = ''
  applyPreferences({ theme: 'system', language: 'en' })
  offerEnhancement(null)
  resetWizard()
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
  // The improved prompt, chosen and not edited since: the job keeps the user's own words too.
  const chosen = state.enhancement
  if (chosen?.used && body.prompt === chosen.enhanced.trim()) body.original_prompt = chosen.original
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
// Prompt enhancement: POST queue-job/enhance {model, prompt} → {original, enhanced,
// template_version, job_type, engine}. Free, nothing stored: the page shows both prompts and
// the user chooses. "Use it" puts the improved one in the form, and the create then sends
// prompt = enhanced and original_prompt = original, so the job keeps both.
// ---------------------------------------------------------------------------------------
/** Show an enhancement to choose from (or none). */
function offerEnhancement(enhancement) {
  state.enhancement = enhancement
  $('enhance-panel').hidden = !enhancement
  $('enhance-status').textContent = ''
  if (!enhancement) return
  $('enhance-original').textContent = enhancement.original
  $('enhance-enhanced').textContent = enhancement.enhanced
  $('enhance-template').textContent =
    `(${enhancement.job_type} template v${enhancement.template_version}, ${enhancement.engine})`
}

$('enhance').onclick = guarded(async () => {
  const prompt = form.prompt.value.trim()
  if (!prompt) throw new Error('Write a prompt first: the improvement starts from your words.')
  offerEnhancement(null)
  const enhancement = await api('queue-job/enhance', { method: 'POST', body: { model: form.model.value, prompt } })
  offerEnhancement({ ...enhancement, used: false })
})

$('enhance-use').onclick = () => {
  const chosen = state.enhancement
  form.prompt.value = chosen.enhanced
  chosen.used = true
  $('enhance-panel').hidden = true
  $('enhance-status').textContent = 'Using the improved prompt; the job keeps yours too.'
  quoteSoon()
}

$('enhance-keep').onclick = () => {
  offerEnhancement(null)
  $('enhance-status').textContent = 'Kept your prompt.'
}

// Edited after "Use it": it is the user's own prompt again (generateBody() checks too).
form.prompt.addEventListener('input', () => {
  if (state.enhancement?.used && form.prompt.value.trim() !== state.enhancement.enhanced.trim()) {
    offerEnhancement(null)
  }
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
  // What was quoted, so a reader (a person's test) can tell this quote is of what it typed.
  Object.assign(line.dataset, data, { items: JSON.stringify(items) })
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

/** Count a batch update; a poll says why it ran (its tooltip): the channel's state, or a
 *  catch-up when the channel (re)joined. */
function countBatchUpdate(source, why = '') {
  state.batchCounts[source] += 1
  const el = $(source === 'realtime' ? 'batch-broadcasts' : 'batch-polls')
  el.textContent = state.batchCounts[source]
  if (why) el.title = el.title ? `${el.title}, ${why}` : `polled: ${why}`
}

$('batch-cancel').onclick = guarded(async () => {
  // {batch: its progress, workers_notified}; each job's cancel also arrives on its card.
  const { batch } = await api('queue-job/batches', { method: 'DELETE', query: { id: state.batchId } })
  showBatch(batch, 'answer')
  await loadCredits()
})

// ---------------------------------------------------------------------------------------
// The wizard, step by step. Each step is a job with its own model and price, made with
// POST queue-job {model, params, project_id} and run inside the request: the answer (200)
// is the finished job, its result in `output` (a failed step released its credits):
//   reference/script     {prompt, sections}            → {script, analysis}
//                        {script, instruction}         → the script improved
//   reference/narration  {script, voice, duration}     → {sections (timings), narration_paths}
//   reference/images     {script, source, timings}     → {images, image_paths}
// The script is edited here between steps (its analysis is free: POST
// queue-job/script/analyze); a voice is heard first (POST queue-job/voices/preview, WAV);
// then generate-video's compose job assembles what the steps made (200 finished, or 202
// followed live like any job). A change upstream voids what was made from it downstream.
// ---------------------------------------------------------------------------------------
const STEP_TYPES = new Set(['script', 'narration', 'images'])
const WIZARD_DURATION = 60 // seconds paid for the narration and the video (the most it may run)
const wizardForm = $('wizard-topic-form')
const wiz = { script: null, narration: null, images: null, videoJobId: null, analyzeSeq: 0, analyzeTimer: null, previewUrl: null }

function resetWizard() {
  Object.assign(wiz, { script: null, narration: null, images: null, videoJobId: null })
  $('wizard-costs').replaceChildren()
  $('wizard-error').hidden = true
  $('wizard-script').hidden = true
  $('wizard-voice').replaceChildren()
  voided('narration')
}

/** What was made from the script (or from the narration) is no longer its result. */
function voided(from) {
  if (from === 'narration') {
    wiz.narration = null
    $('wizard-narration').replaceChildren()
  }
  wiz.images = null
  wiz.videoJobId = null
  $('wizard-images').replaceChildren()
  const video = $('wizard-video')
  video.hidden = true
  video.removeAttribute('src')
  video.dataset.path = ''
  $('wizard-assemble-status').textContent = ''
  $('wizard-voice-step').hidden = !wiz.script
  $('wizard-pictures-step').hidden = !wiz.narration
  $('wizard-assemble-step').hidden = true
}

/** A step's failure, in the wizard, as a person reads it. */
function wizardGuarded(fn) {
  return (event) => {
    // Read now: an event's currentTarget is null once its dispatch is over (after an await).
    const pressed = event?.submitter ?? event?.currentTarget
    const button = pressed instanceof HTMLButtonElement ? pressed : null
    return guarded(async () => {
      $('wizard-error').hidden = true
      try {
        await fn(event)
      } catch (err) {
        console.warn(err)
        const box = $('wizard-error')
        box.dataset.code = err.code ?? 'ERROR'
        box.textContent = err.hint ? `${err.message} ${err.hint}` : err.message
        placeError(box, button) // under the step's button, in view
      }
    })(event)
  }
}

/** Make a step job (its own Idempotency-Key); the finished job, or throw why it failed. */
async function wizardStep(label, model, params) {
  const body = { model, params }
  if (state.projectId) body.project_id = state.projectId
  const key = uuid()
  const job = await api('queue-job', { method: 'POST', body, key })
  state.stepJobs.add(job.id)
  showStepCost(label, job, key)
  loadCredits().catch(showError)
  if (job.status !== 'completed') {
    throw new ApiError({
      code: job.error_code ?? 'STEP_FAILED',
      message: `${label} failed: ${job.error_message ?? 'no reason given'}.`,
      hint: `Nothing was charged (${creditsText(job.cost)} released).`,
    })
  }
  return job
}

const creditsText = (n) => `${n} credit${n === 1 ? '' : 's'}`

/** One line per step made: what it cost. A running assembly's line is updated when it ends. */
function showStepCost(label, job, key) {
  let li = $('wizard-costs').querySelector(`li[data-job-id="${job.id}"]`)
  if (!li) {
    li = document.createElement('li')
    li.dataset.testid = 'wizard-cost'
    li.dataset.jobId = job.id
    li.dataset.idempotencyKey = key
    $('wizard-costs').append(li)
  }
  const charged = job.status === 'completed'
  const used = charged ? job.credits_used ?? job.cost : TERMINAL.has(job.status) ? 0 : job.cost
  Object.assign(li.dataset, { step: label, status: job.status, credits: used, cost: job.cost })
  li.textContent = `${label}: ${
    charged ? `${creditsText(used)} charged`
      : TERMINAL.has(job.status) ? `${job.status}, ${creditsText(job.cost)} released`
        : `${creditsText(job.cost)} reserved, ${job.status}`
  } (job ${job.id.slice(0, 8)}…)`
}

// 1 · The script: written from the topic, then edited field by field, or improved.
wizardForm.onsubmit = wizardGuarded(async (event) => {
  event.preventDefault()
  const params = { prompt: wizardForm.topic.value.trim(), sections: Number(wizardForm.sections.value) }
  const job = await wizardStep('Script', 'reference/script', params)
  showScript(job.output.script, job.output.analysis)
  if ($('wizard-voice').options.length === 0) await loadVoices()
})

function showScript(script, analysis) {
  wiz.script = structuredClone(script)
  $('wizard-title').value = script.title
  $('wizard-sections-list').replaceChildren(...script.sections.map(sectionFields))
  $('wizard-script').hidden = false
  voided('narration')
  showAnalysis(analysis)
}

function sectionFields(section, index) {
  const set = document.createElement('fieldset')
  set.dataset.testid = 'wizard-section'
  set.dataset.index = index
  const legend = document.createElement('legend')
  legend.append(`Section ${index + 1} `)
  const info = document.createElement('span')
  info.dataset.testid = 'wizard-section-analysis'
  legend.append(info)
  set.append(legend)
  const field = (name, label, multiline) => {
    const wrap = document.createElement('label')
    const input = document.createElement(multiline ? 'textarea' : 'input')
    if (multiline) input.rows = 2
    input.name = name
    input.value = section[name] ?? ''
    input.dataset.testid = `wizard-section-${name.replace('_', '-')}`
    input.oninput = () => {
      wiz.script.sections[index][name] = input.value
      scriptEdited()
    }
    wrap.append(label, input)
    return wrap
  }
  set.append(field('title', 'Title'), field('narration', 'Narration', true), field('image_prompt', 'Image prompt'))
  return set
}

$('wizard-title').oninput = () => {
  wiz.script.title = $('wizard-title').value
  scriptEdited()
}

/** An edit: the narration and pictures were of the old text; the analysis follows it. */
function scriptEdited() {
  if (wiz.narration || wiz.images) voided('narration')
  $('wizard-analysis').dataset.state = 'stale'
  clearTimeout(wiz.analyzeTimer)
  wiz.analyzeTimer = setTimeout(analyze, QUOTE_DELAY_MS)
}

/** POST queue-job/script/analyze {script}: words and reading time, free. */
async function analyze() {
  const seq = ++wiz.analyzeSeq
  try {
    const analysis = await api('queue-job/script/analyze', { method: 'POST', body: { script: wiz.script } })
    if (seq === wiz.analyzeSeq) showAnalysis(analysis)
  } catch (err) {
    if (seq !== wiz.analyzeSeq) return
    $('wizard-analysis').textContent = `(no analysis: ${err.message})`
    $('wizard-analysis').dataset.state = 'error'
  }
}

function showAnalysis(analysis) {
  const line = $('wizard-analysis')
  line.textContent = `— ${analysis.words} words, ~${analysis.reading_seconds} s read aloud`
  Object.assign(line.dataset, { state: 'ok', words: analysis.words, seconds: analysis.reading_seconds })
  const infos = $('wizard-sections-list').querySelectorAll('[data-testid="wizard-section-analysis"]')
  analysis.sections.forEach((s, i) => {
    if (!infos[i]) return
    infos[i].textContent = `· ${s.words} words, ~${s.reading_seconds} s, from ${s.start_s} s`
    infos[i].dataset.words = s.words
  })
}

/** {script, instruction}: the offline engine knows "shorter" and "longer"; OpenAI any. */
async function improve(instruction) {
  if (!instruction) throw new Error('Say how to change the script, e.g. “make it shorter”.')
  const job = await wizardStep(`Script (${instruction})`, 'reference/script', { script: wiz.script, instruction })
  showScript(job.output.script, job.output.analysis)
}
$('wizard-shorter').onclick = wizardGuarded(() => improve('make it shorter'))
$('wizard-longer').onclick = wizardGuarded(() => improve('make it longer'))
$('wizard-improve').onclick = wizardGuarded(() => improve($('wizard-instruction').value.trim()))

// 2 · The voice (GET queue-job/voices?language=, the profile's language), heard first.
async function loadVoices() {
  const language = (state.profile?.language ?? 'en').split('-')[0] // a prefix: en → en-US, en-GB
  const voices = await api('queue-job/voices', { query: { language } })
  voices.sort((a, b) => Number(b.engine === 'espeak') - Number(a.engine === 'espeak')) // offline first
  // A job's `voice` is the name after the engine: espeak:en-gb → en-gb.
  const options = voices.map((v) => new Option(`${v.name} — ${v.engine}, ${v.language}`, v.id.split(':').slice(1).join(':')))
  $('wizard-voice').replaceChildren(...(options.length ? options : [new Option('The default voice', '')]))
}

wizardForm.resolution.onchange = () => {
  if (wiz.images) voided('images')
}

$('wizard-voice').onchange = () => {
  if (wiz.narration) voided('narration')
}

$('wizard-preview').onclick = wizardGuarded(async () => {
  const text = (wiz.script?.sections[0]?.narration ?? '').slice(0, 200).trim() || undefined
  const blob = await apiBlob('queue-job/voices/preview', { voice: $('wizard-voice').value || undefined, text })
  const audio = $('wizard-preview-audio')
  if (wiz.previewUrl) URL.revokeObjectURL(wiz.previewUrl)
  wiz.previewUrl = URL.createObjectURL(blob)
  audio.src = wiz.previewUrl
  audio.hidden = false
  await audio.play().catch(() => {}) // a browser may refuse to play aloud: the controls stay
})

/** Signed links (600 s) to files in the user's `uploads` folder, in order. */
async function signed(paths) {
  return Promise.all(
    paths.map(async (path) => {
      const { data, error } = await supabase.storage.from('uploads').createSignedUrl(path, 600)
      if (error) throw error
      return data.signedUrl
    }),
  )
}

$('wizard-narrate').onclick = wizardGuarded(async () => {
  const params = { script: wiz.script, duration: WIZARD_DURATION }
  if ($('wizard-voice').value) params.voice = $('wizard-voice').value
  const job = await wizardStep('Narration', 'reference/narration', params)
  voided('narration')
  wiz.narration = job.output
  const urls = await signed(job.output.narration_paths)
  $('wizard-narration').replaceChildren(
    ...job.output.sections.map((s, i) => {
      const li = document.createElement('li')
      li.dataset.testid = 'wizard-narration-section'
      const end = (s.start_s + s.duration_s).toFixed(1)
      li.append(`${s.title}: ${s.start_s.toFixed(1)}–${end} s (speech ${s.speech_s.toFixed(1)} s) `)
      const audio = document.createElement('audio')
      audio.controls = true
      audio.preload = 'none'
      audio.src = urls[i]
      li.append(audio)
      return li
    }),
  )
  $('wizard-narration').dataset.seconds = job.output.duration_s
  $('wizard-pictures-step').hidden = false
})

// 3 · The pictures: a title card per section, laid out on the narration's timings.
$('wizard-pictures').onclick = wizardGuarded(async () => {
  const params = {
    script: wiz.script, source: 'card', timings: wiz.narration.sections, resolution: wizardForm.resolution.value,
  }
  const job = await wizardStep('Pictures', 'reference/images', params)
  wiz.images = job.output
  const urls = await signed(job.output.images.map((image) => image.path))
  $('wizard-images').replaceChildren(
    ...job.output.images.map((image, i) => {
      const figure = document.createElement('figure')
      const img = document.createElement('img')
      img.dataset.testid = 'wizard-image'
      img.alt = image.prompt
      img.src = urls[i]
      const caption = document.createElement('figcaption')
      caption.textContent = `${image.start_s.toFixed(1)} s · ${image.attribution ?? image.source}`
      figure.append(img, caption)
      return figure
    }),
  )
  $('wizard-assemble-step').hidden = false
})

// 4 · Assembly: the compose job with what the steps made (no TTS, no cards of its own).
$('wizard-assemble').onclick = wizardGuarded(async () => {
  const body = {
    model: 'reference/compose',
    prompt: wiz.script.title,
    script: wiz.script,
    narration_paths: wiz.narration.narration_paths,
    images: wiz.images.image_paths,
    duration: WIZARD_DURATION,
    resolution: wizardForm.resolution.value, // as the pictures were made
  }
  if (state.projectId) body.project_id = state.projectId
  const key = uuid()
  const job = await api('generate-video', { method: 'POST', body, key }) // 200 done, or 202
  wiz.videoJobId = job.id
  showStepCost('Video', job, key)
  followJob(job) // its card below; the wizard shows the video once it is done (render())
  await Promise.all([loadCredits(), loadHistory(1)])
})

/** The assembled job changed (render() calls this): its cost line, and its video when done. */
function wizardVideo(job) {
  showStepCost('Video', job, $('wizard-costs').querySelector(`li[data-job-id="${job.id}"]`)?.dataset.idempotencyKey)
  $('wizard-assemble-status').textContent =
    job.status === 'completed' ? 'Done.' : job.status === 'failed' ? `${job.error_message} (${job.error_code})`
      : `${job.status}, ${job.progress}%`
  const out = job.output
  const video = $('wizard-video')
  if (job.status === 'completed' && out?.video_url && video.dataset.path !== out.video_path) {
    video.dataset.path = out.video_path
    video.poster = out.thumbnail_url ?? ''
    video.src = out.video_url
    video.hidden = false
  }
}

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
  if (state.stepJobs.has(payload.job_id)) return // a wizard step: shown in the wizard
  const card = state.jobs.get(payload.job_id)
  if (!card) {
    // A job made elsewhere (another tab, a backend): follow it here too — unless it is a
    // wizard step (its broadcasts can beat the answer of its POST), which has no video.
    const job = await api('generate-video', { query: { id: payload.job_id } })
    if (STEP_TYPES.has(state.models.find((m) => m.id === job.model_id)?.job_type)) {
      state.stepJobs.add(job.id)
      return
    }
    if (!state.jobs.has(job.id)) followJob(job, 'realtime')
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
  const why = force ? 'catch-up' : `channel ${state.channelStatus}`
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
      countBatchUpdate('polling', why)
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
  if (job.id === wiz.videoJobId) wizardVideo(job)
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
