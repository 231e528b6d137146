package graph

import (
	"html/template"
	"net/http"

	"timeslots/internal/httpx"
)

// playgroundPage is GraphiQL, loaded from jsDelivr with subresource
// integrity. Unlike gqlgen's stock page it never persists the headers
// editor (where admins paste their bearer token) in the browser's storage:
// shouldPersistHeaders is off, and the storage it is given refuses the
// "headers" key outright.
var playgroundPage = template.Must(template.New("playground").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="referrer" content="no-referrer">
  <title>timeslots · GraphQL playground</title>
  <style>body { margin: 0; } #graphiql { height: 100vh; }</style>
  <script src="https://cdn.jsdelivr.net/npm/react@18.2.0/umd/react.production.min.js"
    integrity="sha256-S0lp+k7zWUMk2ixteM6HZvu8L9Eh//OVrt+ZfbCpmgY=" crossorigin="anonymous"></script>
  <script src="https://cdn.jsdelivr.net/npm/react-dom@18.2.0/umd/react-dom.production.min.js"
    integrity="sha256-IXWO0ITNDjfnNXIu5POVfqlgYoop36bDzhodR6LW5Pc=" crossorigin="anonymous"></script>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/graphiql@4.1.2/graphiql.min.css"
    integrity="sha256-MEh+B2NdMSpj9kexQNN3QKc8UzMrCXW/Sx/phcpuyIU=" crossorigin="anonymous">
</head>
<body>
  <div id="graphiql">Loading…</div>
  <script src="https://cdn.jsdelivr.net/npm/graphiql@4.1.2/graphiql.min.js"
    integrity="sha256-hnImuor1znlJkD/FOTL3jayfS/xsyNoP04abi8bFJWs=" crossorigin="anonymous"></script>
  <script>
    const endpoint = location.origin + {{.Endpoint}};
    // Queries and tabs survive a reload; headers (an admin token) never
    // reach localStorage.
    const storage = {
      getItem: (key) => key === 'headers' ? null : localStorage.getItem('timeslots:' + key),
      setItem: (key, value) => { if (key !== 'headers') localStorage.setItem('timeslots:' + key, value); },
      removeItem: (key) => localStorage.removeItem('timeslots:' + key),
      clear: () => Object.keys(localStorage).filter((k) => k.startsWith('timeslots:')).forEach((k) => localStorage.removeItem(k)),
      get length() { return Object.keys(localStorage).filter((k) => k.startsWith('timeslots:')).length; },
    };
    const fetcher = GraphiQL.createFetcher({ url: endpoint });
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
  </script>
</body>
</html>
`))

const playgroundQuery = `# Admin fields need the header {"Authorization": "Bearer <ADMIN_TOKEN>"}
# (in development without ADMIN_TOKEN, loopback clients are admins).
query AvailableSlots {
  timeSlots(first: 10) {
    totalCount
    pageInfo { hasNextPage endCursor }
    nodes { id startTime endTime date remaining provider { name timeZone } }
  }
}
`

// Playground serves GraphiQL for endpoint. In production only admins get
// it (the API itself stays open to every client).
func Playground(opt Options, endpoint string) http.Handler {
	data := struct{ Endpoint, DefaultQuery string }{endpoint, playgroundQuery}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if opt.Production {
			if err := httpx.Admin(r.Context()); err != nil {
				httpx.WriteError(w, r, err)
				return
			}
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		_ = playgroundPage.Execute(w, data)
	})
}
