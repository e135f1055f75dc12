// A frontend following its own profile with supabase-js's postgres_changes against the
// local stack: sign in anonymously, subscribe to UPDATEs of its profiles row (filter
// id=eq.<uid>) and to every change of profiles (RLS decides), wait for Realtime's
// "Subscribed to PostgreSQL", print {"ready": …} and wait for its balance to change;
// then print what each binding received.
//   node postgres_changes.mjs <SUPABASE_URL> <publishable key>
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws' // Node before 22 has no global WebSocket (Debian's is 18)

const [url, key] = process.argv.slice(2)
const supabase = createClient(url, key, {
  auth: { persistSession: false },
  realtime: { transport: WebSocket },
})
const { data: signIn, error: signInError } = await supabase.auth.signInAnonymously()
if (signInError) throw signInError
const uid = signIn.user.id
await supabase.realtime.setAuth()

const own = []
const every = []
let changed
const balanceChanged = new Promise((resolve) => (changed = resolve))
const ready = new Promise((resolve, reject) => {
  const system = []
  supabase
    .channel(`profile-${uid}`)
    .on('postgres_changes', { event: 'UPDATE', schema: 'public', table: 'profiles', filter: `id=eq.${uid}` }, (p) => {
      own.push({ eventType: p.eventType, new: p.new, old: p.old, errors: p.errors, table: p.table, commit_timestamp: p.commit_timestamp })
      changed()
    })
    .on('postgres_changes', { event: '*', schema: 'public', table: 'profiles' }, (p) => {
      every.push({ eventType: p.eventType, id: p.new?.id ?? p.old?.id ?? null })
      console.log(JSON.stringify({ received: every.at(-1) })) // what the test shows if it gives up
    })
    .on('system', {}, (p) => {
      system.push(p)
      if (p.extension === 'postgres_changes') resolve(system)
    })
    .subscribe((status, err) => {
      if (status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') reject(err ?? new Error(status))
    })
})
const system = await ready
console.log(JSON.stringify({ ready: { uid, system } }))
await balanceChanged
await supabase.removeAllChannels()
console.log(JSON.stringify({ own, every, vsn: supabase.realtime.vsn }))
process.exit(0)
