// FinVision GraphiQL boot script.
//
// Served as a static file so the page needs no inline <script> and works
// under `script-src 'self'`. It reads the endpoints from the data-attributes
// of #graphiql (set by the server, HTML-escaped) and mounts GraphiQL with
// the vendored React, ReactDOM, GraphiQL and graphql-ws UMD globals.
(function () {
  "use strict";

  var root = document.getElementById("graphiql");
  var endpoint = root.getAttribute("data-endpoint") || "/graphql";
  var subscriptionEndpoint =
    root.getAttribute("data-subscription-endpoint") || endpoint;

  // Absolute ws:/wss: URL for the subscription endpoint, resolved against
  // the page (older browsers reject relative or http(s) WebSocket URLs).
  function websocketUrl(path) {
    var url = new URL(path, window.location.href);
    if (url.protocol === "https:") {
      url.protocol = "wss:";
    } else if (url.protocol === "http:") {
      url.protocol = "ws:";
    }
    return url.href;
  }
  var httpUrl = new URL(endpoint, window.location.href).href;
  var wsUrl = websocketUrl(subscriptionEndpoint);

  // GraphiQL hands every operation the parsed content of the headers pane
  // as `fetcherOpts.headers`. With an explicit `wsClient`, createFetcher does
  // not forward them to the WebSocket, so the connection_init payload is
  // built here: it is the headers pane content verbatim, e.g.
  // {"Authorization": "Bearer <token>"}. A graphql-ws client is bound to the
  // headers it connected with, so a change of headers gets a fresh client
  // (the previous one is lazy and closes once its subscriptions end).
  var current = null;
  function fetcherFor(headers) {
    var key = JSON.stringify(headers || {});
    if (current === null || current.key !== key) {
      var params = JSON.parse(key);
      current = {
        key: key,
        fetcher: GraphiQL.createFetcher({
          url: httpUrl,
          subscriptionUrl: wsUrl,
          wsClient: graphqlWs.createClient({
            url: wsUrl,
            lazy: true,
            connectionParams: function () {
              return params;
            },
          }),
        }),
      };
    }
    return current.fetcher;
  }
  function fetcher(graphQLParams, fetcherOpts) {
    return fetcherFor(fetcherOpts && fetcherOpts.headers)(
      graphQLParams,
      fetcherOpts
    );
  }

  var defaultQuery = [
    "# Welcome to the FinVision API.",
    "#",
    "# Most operations need you to be logged in:",
    "#  1. Run the login mutation (see the Docs",
    "#     pane) and copy the token it returns.",
    "#  2. Open the Headers pane below and paste",
    "#       {\"Authorization\": \"Bearer <token>\"}",
    "#     with <token> replaced by your token.",
    "#",
    "# Headers go with every query and mutation,",
    "# and are the connection_init payload of",
    "# subscriptions. They stay in this tab only:",
    "# to keep them in this browser, turn on",
    "# \"Persist headers\" in Settings (the gear).",
    "#",
    "# Ctrl-Enter (Cmd-Enter) runs the operation.",
    "",
    "query {",
    "  __typename",
    "}",
    "",
  ].join("\n");

  ReactDOM.createRoot(root).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      isHeadersEditorEnabled: true,
      // A token in localStorage outlives the tab and is readable by any script on this origin:
      // headers are kept only when the user opts in with Settings → "Persist headers" (left
      // undefined, GraphiQL starts with persistence off and shows that switch).
      showPersistHeadersSettings: true,
      defaultEditorToolsVisibility: "headers",
    })
  );
})();
