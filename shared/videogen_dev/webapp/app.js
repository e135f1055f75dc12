// videogen — the reference web app: how a frontend uses this backend with supabase-js.
//
//   Auth       supabase.auth.*                         (local Supabase Auth, /auth/v1)
//   Uploads    supabase.storage.from('uploads')        (local Supabase Storage, /storage/v1)
//   The API    supabase.functions.invoke(name, …)      (/functions/v1/<name>, openapi.yaml)
//   Live jobs  supabase.channel('user:<uid>:jobs')     (Realtime broadcasts, /realtime/v1)
//              with polling of GET generate-video?id= every 2 s while the channel is down.
//
// Every function answers {"success": true, "data": …} or {"success": false, "error":
// {code, message, details?, hint?}}; api() below returns `data` or throws an ApiError
// carrying the error's fields, and showError() puts them on the page for a person.

const POLL_MS = 2000
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
  await Promise.all([loadCredits(), loadHistory(1, { follow: true })])
}

function signedOut() {
  stopLive()
  state.user = null
  state.upload = null
  state.jobs.clear()
  $('jobs').replaceChildren()
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

form.onsubmit = guarded(async (event) => {
  event.preventDefault()
  const kind = form.kind.value
  // GenerateVideoRequest in openapi.yaml.
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
  // 202: queued and routed; 200: a short composed video rendered at once (already final).
  const job = await api('generate-video', { method: 'POST', body })
  followJob(job)
  await Promise.all([loadCredits(), loadHistory(1)])
})

// ---------------------------------------------------------------------------------------
// Live updates. Every job change is a broadcast on the private topic `user:<uid>:jobs`
// whose payload is the job_events row {job_id, event, status, progress, attempt, data}.
// While the channel is not SUBSCRIBED, the page polls each running job every 2 s.
// ---------------------------------------------------------------------------------------
async function startLive(session) {
  stopLive()
  await supabase.realtime.setAuth(session.access_token) // private topics need the user's token
  state.channel = supabase
    .channel(`user:${session.user.id}:jobs`, { config: { private: true } })
    .on('broadcast', { event: '*' }, ({ payload }) => onBroadcast(payload))
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
    card = { el, job, lastEventId: 0, finished: false, relinked: false }
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
  await Promise.all([loadCredits(), loadHistory()])
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
  const list = await api('generate-video', { query: { page, limit } })
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
