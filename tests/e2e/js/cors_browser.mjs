// A page on ANOTHER origin calls every route and method of the five functions through
// supabase-js's functions.invoke in headless Chromium, as a frontend hosted elsewhere would
// (its own static server on a port of its own: another origin than the API's). Each call
// carries Authorization, apikey, x-client-info and, for a write, content-type and an
// Idempotency-Key, so the browser preflights every one of them; a CORS refusal shows up as
// supabase-js's FunctionsFetchError instead of an answer. A control call that the API does
// not allow (PATCH generate-video) must be refused by the browser itself.
// Prints one JSON object for tests/e2e/test_cors_browser.py: the page's origin, each call
// (function, route, method, the status it expects and what the page read), the control
// and the console's messages.
//   node cors_browser.mjs <API base URL> <config.json> <user-data-dir> <chromium>
// config.json: {publishable_key, secret_key, user_token, admin_token, fal_key, model}
import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import http from 'node:http'
import { launch } from './launch.mjs'

const [base, configPath, userDataDir, executablePath] = process.argv.slice(2)
const config = JSON.parse(await readFile(configPath, 'utf8'))
const started = Date.now()
const log = (step) => console.error(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${step}`)

// The page's own origin: a static server with the page and supabase-js's browser build.
const supabaseJs = await readFile(
  new URL('../../../node_modules/@supabase/supabase-js/dist/umd/supabase.js', import.meta.url),
)
const PAGE = `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<title>A frontend on another origin</title><script src="/supabase.js"></script><body></body>`
const site = http.createServer((req, res) => {
  if (req.url === '/') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE)
  } else if (req.url === '/supabase.js') {
    res.writeHead(200, { 'content-type': 'text/javascript' }).end(supabaseJs)
  } else {
    res.writeHead(404).end()
  }
})
await new Promise((resolve) => site.listen(0, '127.0.0.1', resolve))
const origin = `http://127.0.0.1:${site.address().port}`
const out = { origin, api: base, calls: [], console: [], page_errors: [] }

const context = await launch(userDataDir, executablePath)
const page = context.pages()[0] ?? (await context.newPage())
page.on('pageerror', (err) => out.page_errors.push(String(err)))
page.on('console', (msg) => out.console.push({ type: msg.type(), text: msg.text() }))

/**
 * Invoke `path` (`name[/route][?query]`) from the page as `as` (user, admin, secret, or
 * public: only the publishable key supabase-js sends by itself); what the page could read.
 */
async function invoke(path, { method, body, as = 'user', key = null }) {
  const headers = {}
  if (as === 'user') headers.Authorization = `Bearer ${config.user_token}`
  if (as === 'admin') headers.Authorization = `Bearer ${config.admin_token}`
  if (as === 'secret') {
    // A backend's credential, sent from a page here only to reach the operator routes.
    headers.apikey = config.secret_key
    headers.Authorization = `Bearer ${config.secret_key}`
  }
  if (method !== 'GET') headers['Idempotency-Key'] = key ?? randomUUID()
  return page.evaluate(
    async ({ path, method, body, headers }) => {
      const { data, error, response } = await window.client.functions.invoke(path, { method, body, headers })
      const read = {
        status: response?.status ?? null,
        fetch_error: null,
        // Readable only when the API exposes them (Access-Control-Expose-Headers).
        request_id: response?.headers.get('x-request-id') ?? null,
        replayed: response?.headers.get('idempotent-replayed') ?? null,
        content_type: response?.headers.get('content-type') ?? null,
        data: null,
        error: null,
      }
      if (error?.name === 'FunctionsFetchError') {
        read.fetch_error = String(error.context?.message ?? error.context ?? error.message)
      } else if (error) {
        read.error = (await response.json().catch(() => null))?.error ?? null
      } else if (data && typeof data === 'object') {
        read.data = data.data ?? null
      }
      return read
    },
    { path, method, body, headers },
  )
}

/** One call of the walk: recorded with the statuses it may answer. */
async function call(path, { method = 'GET', expect = [200], ...options } = {}) {
  const read = await invoke(path, { method, ...options })
  const [name, ...rest] = path.split('?')[0].split('/')
  out.calls.push({ function: name, route: rest.length ? `/${rest.join('/')}` : null, method, expect, ...read })
  log(`${method} ${path} → ${read.status ?? read.fetch_error}`)
  if (read.fetch_error === null && !expect.includes(read.status)) {
    throw new Error(`${method} ${path}: ${read.status} ${JSON.stringify(read.error)}`)
  }
  return read
}

try {
  await page.goto(`${origin}/`)
  await page.waitForFunction(() => typeof window.supabase?.createClient === 'function')
  await page.evaluate(
    ({ base, key }) => {
      window.client = window.supabase.createClient(base, key, {
        auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
      })
    },
    { base, key: config.publishable_key },
  )
  out.page_origin = await page.evaluate(() => window.location.origin)
  log(`page at ${out.page_origin}, API at ${base}`)

  const shot = { model: config.model, params: { prompt: 'a paper boat at dawn', duration: 2 } }
  const script = { title: 'Tides', sections: [{ title: 'One', narration: 'The sea rises twice a day.' }] }

  // update-credits: the account.
  await call('update-credits', { method: 'POST', body: { action: 'claim_initial_grant' } })
  await call('update-credits')
  await call('update-credits/profile', { method: 'PATCH', body: { theme: 'dark', language: 'pt-BR' } })
  await call('update-credits/profile')
  await call('update-credits/keys', { method: 'PUT', body: { provider: 'fal', key: config.fal_key }, expect: [201] })
  await call('update-credits/keys')
  await call('update-credits/keys?provider=fal', { method: 'DELETE' })
  const apiKey = await call('update-credits/api-keys', { method: 'POST', body: { name: 'ci', scopes: ['read'] }, expect: [201] })
  await call('update-credits/api-keys')
  await call(`update-credits/api-keys?id=${apiKey.data.id}`, { method: 'DELETE' })
  await call('update-credits/webhook-secret')
  await call('update-credits/webhook-secret', { method: 'POST' })
  await call('update-credits/account')
  // Apple's route, reached unsigned: the function's own refusal (401, or 503 while the App
  // Store is not configured here), read by the page.
  await call('update-credits/apple-notifications', {
    method: 'POST', body: { signedPayload: 'not-a-jws' }, as: 'public', expect: [401, 503],
  })

  // generate-video and queue-job: jobs.
  const made = await call('generate-video', {
    method: 'POST', body: { model: config.model, prompt: 'a paper boat at dawn', duration: 2, resolution: '480p' },
    expect: [202],
  })
  out.generated = made.data.id
  await call(`generate-video?id=${made.data.id}`)
  const queued = await call('queue-job', { method: 'POST', body: shot, expect: [202] })
  out.canceled = queued.data.id
  await call(`queue-job?id=${queued.data.id}`)
  // Deleting the account is refused while one of its jobs is unfinished.
  await call('update-credits/account', { method: 'DELETE', expect: [409] })
  // A job that has not finished cannot be shared; an unknown link is not found.
  await call('queue-job/share-links', { method: 'POST', body: { job_id: queued.data.id }, expect: [409] })
  await call('queue-job/share-links')
  await call(`queue-job/share-links?id=${randomUUID()}`, { method: 'DELETE', expect: [404] })
  await call('queue-job/shared?id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', { as: 'public', expect: [404] })
  await call('queue-job/webhook-deliveries')
  await call(`queue-job?id=${queued.data.id}`, { method: 'DELETE' })

  // queue-job's sub-routes: the catalogue, the wizard's helpers, the workspace.
  await call('queue-job/models', { as: 'public' })
  await call('queue-job/voices', { as: 'public' })
  await call('queue-job/quote', { method: 'POST', body: { items: [shot] } })
  await call('queue-job/script/analyze', { method: 'POST', body: { script } })
  out.preview = await call('queue-job/voices/preview', { method: 'POST', body: { voice: 'en-gb', text: 'Hi there.' } })
  const key = randomUUID()
  const project = await call('queue-job/projects', { method: 'POST', body: { title: 'Elsewhere' }, key, expect: [201] })
  out.project = project.data.id
  // The same key again: the stored answer, and the page can read that it is a replay.
  out.replay = await call('queue-job/projects', { method: 'POST', body: { title: 'Elsewhere' }, key, expect: [201] })
  await call('queue-job/projects')
  await call(`queue-job/projects?id=${project.data.id}`, { method: 'PATCH', body: { title: 'Renamed' } })
  const batch = await call('queue-job/batches', {
    method: 'POST', body: { items: [shot], project_id: project.data.id }, expect: [202],
  })
  out.batch = batch.data.id
  await call(`queue-job/batches?id=${batch.data.id}`)
  await call(`queue-job/batches?id=${batch.data.id}`, { method: 'DELETE' })
  await call(`queue-job/projects?id=${project.data.id}`, { method: 'DELETE' })
  const elements = [{ type: 'text', text: '{{headline}}', start: 0, duration: 2 }]
  const template = await call('queue-job/element-templates', {
    method: 'POST', body: { name: 'Promo', elements }, expect: [201],
  })
  await call('queue-job/element-templates')
  await call(`queue-job/element-templates?id=${template.data.id}`, { method: 'PATCH', body: { name: 'Promo 2' } })
  // Missing fields are listed before any money moves.
  await call('queue-job/element-templates/render', {
    method: 'POST', body: { template_id: template.data.id, model: 'reference/compose', values: {} }, expect: [422],
  })
  await call(`queue-job/element-templates?id=${template.data.id}`, { method: 'DELETE' })
  await call('queue-job/enhance', { method: 'POST', body: { model: config.model, prompt: 'a paper boat' } })

  // The admin view, with an admin's token.
  await call('queue-job/admin/jobs', { as: 'admin' })
  await call('queue-job/admin/jobs', {
    method: 'POST', as: 'admin', body: { action: 'requeue', id: made.data.id, reason: 'cross-origin check' },
  })
  await call('queue-job/admin/workers', { as: 'admin' })
  await call('queue-job/admin/templates', { as: 'admin' })
  await call('queue-job/admin/templates', {
    method: 'POST', as: 'admin', expect: [201],
    body: { action: 'create', job_type: 'narration', instruction: 'Read it warmly, from afar.', activate: false },
  })

  // The machine-to-machine routes, reached from a page all the same.
  await call('job-callback', { method: 'POST', body: { event: 'progress' }, as: 'public', expect: [401] })
  await call('health-check-workers', { as: 'secret' })
  await call('health-check-workers', { method: 'POST', body: { action: 'sweep' }, as: 'secret' })
  await call('health-check-workers/live', { as: 'public' })
  // Ready or not (no worker runs here), and metrics on or off: either way an answer.
  await call('health-check-workers/ready', { as: 'public', expect: [200, 503] })
  await call('health-check-workers/metrics', { as: 'public', expect: [401, 503] })

  // The control: a method the route does not declare is refused by the browser itself.
  // Chromium says why on the console: wait for that line (it may come after the answer).
  const refusal = page.waitForEvent('console', { predicate: (m) => m.text().includes('CORS policy') })
  out.control = await invoke('generate-video', { method: 'PATCH', body: { x: 1 } })
  out.control_console = (await refusal).text()
} catch (err) {
  console.error(`console: ${JSON.stringify(out.console.slice(-10))}`)
  throw err
} finally {
  await context.close()
  site.close()
}
out.seconds = (Date.now() - started) / 1000
console.log(JSON.stringify(out))
