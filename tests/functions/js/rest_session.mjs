// What a frontend does with supabase-js's postgrest-js against the local /rest/v1: reads with
// embeds, filters, counts and ranges, rpc by POST and GET, a write the grants refuse, single
// and maybeSingle, an unknown table. Prints one JSON object for the Python test to check.
//   node rest_session.mjs <SUPABASE_URL> <publishable key> <access token> <user id> <other user id>
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws' // Node before 22 has no global WebSocket (supabase-js makes a Realtime client)

const [url, key, token, userId, otherId] = process.argv.slice(2)
const supabase = createClient(url, key, {
  auth: { persistSession: false, autoRefreshToken: false },
  global: { headers: { Authorization: `Bearer ${token}` } },
  realtime: { transport: WebSocket },
})
const out = {}
const brief = (r) => ({ status: r.status, error: r.error, count: r.count ?? null })

const models = await supabase.from('models').select('id, name, jobs(id)').order('id')
out.models = {
  ...brief(models),
  ids: models.data?.map((m) => m.id),
  jobs: models.data?.flatMap((m) => m.jobs.map((j) => j.id)),
}

const head = await supabase.from('models').select('*', { count: 'exact', head: true })
out.head = brief(head)

const ranged = await supabase.from('models').select('id', { count: 'exact' }).order('id').range(1, 2)
out.ranged = { ...brief(ranged), ids: ranged.data?.map((m) => m.id) }

const jobs = await supabase.from('jobs').select('id, status, model:models(id)')
out.jobs = { ...brief(jobs), data: jobs.data }

const filtered = await supabase
  .from('models')
  .select('id')
  .or('featured.is.true,id.eq.reference/text-to-video')
  .not('id', 'in', '("none","other")')
  .contains('aspect_ratios', ['16:9'])
  .ilike('id', '%video%')
  .order('id', { ascending: false, nullsFirst: true })
out.filtered = { ...brief(filtered), ids: filtered.data?.map((m) => m.id) }

const other = await supabase.from('profiles').select('id').eq('id', otherId)
out.other = { ...brief(other), data: other.data }

const renamed = await supabase
  .from('profiles')
  .update({ display_name: 'From JS' })
  .eq('id', userId)
  .select('id, name:display_name')
  .single()
out.renamed = { ...brief(renamed), data: renamed.data }

const rpc = await supabase.rpc('list_models')
out.rpc = { ...brief(rpc), ids: rpc.data?.map((m) => m.id) }

const rpcGet = await supabase.rpc('list_jobs', { p_limit: 5 }, { get: true })
out.rpcGet = { ...brief(rpcGet), ids: rpcGet.data?.items?.map((j) => j.id) }

const refused = await supabase
  .from('voices')
  .insert({ id: 'js:x', engine: 'espeak', language: 'en', name: 'x' })
out.refused = brief(refused)

const single = await supabase.from('models').select('id').single()
out.single = brief(single)

const maybe = await supabase.from('models').select('id').eq('id', 'none').maybeSingle()
out.maybe = { ...brief(maybe), data: maybe.data }

const missing = await supabase.from('nope').select()
out.missing = brief(missing)

const csv = await supabase.from('models').select('id').csv()
out.csv = brief(csv)

console.log(JSON.stringify(out))
