// What a frontend does with supabase-js against the local stack: sign in anonymously,
// check the token's claims against the project's JWKS, call the functions with
// functions.invoke, and join Realtime channels. Prints one JSON object for the Python test to check.
//   node frontend_session.mjs <SUPABASE_URL> <publishable key>
import { createClient } from '@supabase/supabase-js'
import WebSocket from 'ws' // Node before 22 has no global WebSocket (Debian's is 18)

const [url, key] = process.argv.slice(2)
const supabase = createClient(url, key, {
  auth: { persistSession: false },
  realtime: { transport: WebSocket },
})
const out = {}

const { data: signIn, error: signInError } = await supabase.auth.signInAnonymously()
if (signInError) throw signInError
out.user = { id: signIn.user.id, is_anonymous: signIn.user.is_anonymous }

const { data: claims, error: claimsError } = await supabase.auth.getClaims()
if (claimsError) throw claimsError
out.claims = { sub: claims.claims.sub, role: claims.claims.role, alg: claims.header.alg }

const grant = await supabase.functions.invoke('update-credits', {
  body: { action: 'claim_initial_grant' },
})
out.grant = { error: grant.error?.message ?? null, data: grant.data }

const again = await supabase.functions.invoke('update-credits', {
  body: { action: 'claim_initial_grant' },
})
out.again = {
  status: again.error?.context?.status ?? null,
  body: again.error?.context ? await again.error.context.json() : null,
}

const credits = await supabase.functions.invoke('update-credits', { method: 'GET' })
out.credits = { error: credits.error?.message ?? null, data: credits.data }

// Realtime: the user's own private topic joins (our policy on realtime.messages allows it);
// someone else's is refused by the same policy.
const subscribe = (topic) =>
  new Promise((resolve) => {
    const channel = supabase.channel(topic, { config: { private: true } })
    channel.subscribe((status, err) => {
      if (status === 'SUBSCRIBED' || status === 'CHANNEL_ERROR' || status === 'TIMED_OUT') {
        resolve({ status, error: err?.message ?? null, channel })
      }
    })
  })
await supabase.realtime.setAuth()
const own = await subscribe(`user:${signIn.user.id}:jobs`)
const other = await subscribe(`user:${crypto.randomUUID()}:jobs`)
out.realtime = {
  own: own.status,
  other: other.status,
  other_error: other.error,
  vsn: supabase.realtime.vsn,
}
await supabase.removeAllChannels()

const { error: outError } = await supabase.auth.signOut()
out.signed_out = !outError
console.log(JSON.stringify(out))
