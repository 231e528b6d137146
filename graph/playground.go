package graph

import (
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"timeslots/internal/httpx"
)

// playgroundPage is GraphiQL, loaded from jsDelivr with subresource
// integrity. Unlike gqlgen's stock page it never persists the headers
// editor (where admins paste their bearer token) in the browser's storage:
// shouldPersistHeaders is off, and the storage it is given refuses the
// "headers" key outright. A signed-in admin's requests carry the console
// session's CSRF token (the cookie authorises them).
//
// When the CDN cannot be reached (offline, blocked, a failed integrity
// check), the page says so instead of "Loading…" for ever: a script
// fails (onerror) or GraphiQL is still missing after a timeout, and the
// page then links to the console and to queries sent by GET.
var playgroundPage = template.Must(template.New("playground").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="referrer" content="no-referrer">
  <title>timeslots · GraphQL playground</title>
  <style>
    body { margin: 0; font: 15px/1.5 system-ui, sans-serif; color: #1b1f24; }
    #graphiql { height: 100vh; }
    #loading, #offline { padding: 1em 2em; max-width: 50em; }
    #offline a { color: #1d4ed8; }
    #offline code { background: #f3f5f8; padding: 0 .2em; }
  </style>
  <script>
    // Shows the fallback once, whichever failure comes first; a script in
    // the head can fail before the body exists.
    function playgroundFailed() {
      if (window.playgroundShown) return;
      window.playgroundShown = true;
      const show = function () {
        document.getElementById('graphiql').hidden = true;
        document.getElementById('offline').hidden = false;
      };
      if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', show);
      else show();
    }
    setTimeout(function () { if (typeof GraphiQL === 'undefined') playgroundFailed(); }, {{.TimeoutMs}});
  </script>
  <script src="https://cdn.jsdelivr.net/npm/react@18.2.0/umd/react.production.min.js"
    integrity="sha256-S0lp+k7zWUMk2ixteM6HZvu8L9Eh//OVrt+ZfbCpmgY=" crossorigin="anonymous" onerror="playgroundFailed()"></script>
  <script src="https://cdn.jsdelivr.net/npm/react-dom@18.2.0/umd/react-dom.production.min.js"
    integrity="sha256-IXWO0ITNDjfnNXIu5POVfqlgYoop36bDzhodR6LW5Pc=" crossorigin="anonymous" onerror="playgroundFailed()"></script>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/graphiql@4.1.2/graphiql.min.css"
    integrity="sha256-MEh+B2NdMSpj9kexQNN3QKc8UzMrCXW/Sx/phcpuyIU=" crossorigin="anonymous">
</head>
<body>
  <div id="graphiql"><p id="loading">Loading GraphiQL from cdn.jsdelivr.net…</p></div>
  <section id="offline" hidden>
    <h1>The playground could not load</h1>
    <p>GraphiQL, React and ReactDOM come from cdn.jsdelivr.net, and this browser could not load them
      (no network, a blocked CDN, or a failed integrity check). The API itself works without them.</p>
    <ul>
      <li><a href="{{.Console}}">Open the admin console</a>, served entirely by this server.</li>
      <li>Send queries by GET, for example
        <a href="{{.SlotsExample}}"><code>{{.SlotsQuery}}</code></a> or
        <a href="{{.ProvidersExample}}"><code>{{.ProvidersQuery}}</code></a>.</li>
      <li>Or POST them with curl: <code>curl -H 'Content-Type: application/json' -d '{"query":"{ __typename }"}' {{.Endpoint}}</code>.</li>
    </ul>
  </section>
  <script src="https://cdn.jsdelivr.net/npm/graphiql@4.1.2/graphiql.min.js"
    integrity="sha256-hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs=" crossorigin="anonymous" onerror="playgroundFailed()"></script>
  <script src="https://cdn.jsdelivr.net/npm/graphql-ws@5.16.0/umd/graphql-ws.min.js"
    integrity="sha256-s2AzT5X4ELumZedejoVbgthqH9D6gUZ3TmA8UOASQKo=" crossorigin="anonymous"></script>
  <script>
    try {
      if (typeof GraphiQL === 'undefined' || typeof React === 'undefined' || typeof ReactDOM === 'undefined') {
        throw new Error('GraphiQL did not load');
      }
      const endpoint = location.origin + {{.Endpoint}};
      // Subscriptions go over a websocket to the same endpoint
      // (graphql-transport-ws; slotsChanged is public). Without graphql-ws
      // the playground still runs queries and mutations.
      const subscriptionEndpoint = location.origin.replace(/^http/, 'ws') + {{.Endpoint}};
      const wsClient = typeof graphqlWs === 'undefined' ? undefined
        : graphqlWs.createClient({ url: subscriptionEndpoint, lazy: true });
      // Queries and tabs survive a reload; headers (an admin token) never
      // reach localStorage.
      const storage = {
        getItem: (key) => key === 'headers' ? null : localStorage.getItem('timeslots:' + key),
        setItem: (key, value) => { if (key !== 'headers') localStorage.setItem('timeslots:' + key, value); },
        removeItem: (key) => localStorage.removeItem('timeslots:' + key),
        clear: () => Object.keys(localStorage).filter((k) => k.startsWith('timeslots:')).forEach((k) => localStorage.removeItem(k)),
        get length() { return Object.keys(localStorage).filter((k) => k.startsWith('timeslots:')).length; },
      };
      const csrf = {{.CSRF}};
      const fetcher = GraphiQL.createFetcher({ url: endpoint, headers: csrf ? { 'X-CSRF-Token': csrf } : {}, wsClient: wsClient });
      ReactDOM.render(
        React.createElement(GraphiQL, {
          fetcher: fetcher,
          storage: storage,
          isHeadersEditorEnabled: true,
          shouldPersistHeaders: false,
          defaultQuery: {{.DefaultQuery}},
        }),
        document.getElementById('graphiql'),
      );
      window.playgroundShown = true;
    } catch (e) {
      playgroundFailed();
    }
  </script>
</body>
</html>
`))

const playgroundQuery = `# Signed in at /admin/login, this playground is an admin's. Scripts send
# the header {"Authorization": "Bearer <ADMIN_TOKEN>"} instead (in
# development without ADMIN_TOKEN, loopback clients are admins).
query AvailableSlots {
  timeSlots(first: 10) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id startTime endTime date remaining provider { name timeZone } }
  }
}

# Live changes of a provider's slots (run it, then book a slot in another tab).
subscription SlotsChanged {
  slotsChanged(filter: {providerId: 1}) {
    kind providerId from to count version
    slot { id remaining status }
  }
}
`

// Example queries the fallback links to, sent by GET.
const (
	exampleSlotsQuery     = `{ timeSlots(first: 5) { nodes { id startTime remaining provider { name } } } }`
	exampleProvidersQuery = `{ providers(first: 10) { nodes { id name timeZone } } }`
)

// PlaygroundTimeoutMs is how long the playground waits for GraphiQL
// before it shows the fallback.
const PlaygroundTimeoutMs = 8000

// PlaygroundLinks are the paths the playground uses and links to.
type PlaygroundLinks struct {
	GraphQL string // the endpoint
	Console string // the admin console
	Login   string // its sign-in form
}

// Playground serves GraphiQL for the endpoint of links. In production only
// admins get it (the API itself stays open to every client): a browser
// that is not signed in is sent to the sign-in form, which brings it back
// here; other clients get the admin error.
func Playground(opt Options, links PlaygroundLinks) http.Handler {
	get := func(q string) string { return links.GraphQL + "?query=" + url.QueryEscape(q) }
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opt.Production {
			if err := httpx.Admin(r.Context()); err != nil {
				if strings.Contains(r.Header.Get("Accept"), "text/html") && links.Login != "" {
					http.Redirect(w, r, links.Login+"?next="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
					return
				}
				httpx.WriteError(w, r, err)
				return
			}
		}
		data := struct {
			Endpoint, DefaultQuery, Console, CSRF string
			SlotsQuery, ProvidersQuery            string
			SlotsExample, ProvidersExample        string
			TimeoutMs                             int
		}{
			Endpoint: links.GraphQL, DefaultQuery: playgroundQuery, Console: links.Console,
			SlotsQuery: exampleSlotsQuery, ProvidersQuery: exampleProvidersQuery,
			SlotsExample: get(exampleSlotsQuery), ProvidersExample: get(exampleProvidersQuery),
			TimeoutMs: PlaygroundTimeoutMs,
		}
		if sess, ok := httpx.SessionOf(r.Context()); ok {
			data.CSRF = sess.CSRFToken()
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		_ = playgroundPage.Execute(w, data)
	})
}
