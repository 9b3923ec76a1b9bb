// FinVision GraphiQL boot script.
//
// Served as a static file so the page needs no inline <script> and works
// under `script-src 'self'`. It reads the endpoints from the data-attributes
// of #graphiql (set by the server, HTML-escaped) and mounts GraphiQL with
// the vendored React, ReactDOM, GraphiQL, graphql-ws and Explorer UMD globals, with the
// workbench's sign-in panel, example tabs and Chart view (workbench.js).
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

  var W = window.FinVisionWorkbench;
  var h = React.createElement;
  var examples = JSON.parse(root.getAttribute("data-examples") || "[]");

  // The signed-in user's token goes with every operation (and, through fetcherFor, into the
  // connection_init payload of subscriptions), unless the headers pane sets Authorization itself.
  function withSession(headers) {
    var merged = Object.assign({}, headers || {});
    var s = W.session();
    var named = Object.keys(merged).some(function (name) {
      return name.toLowerCase() === "authorization";
    });
    if (s && !named) {
      merged.Authorization = "Bearer " + s.token;
    }
    return merged;
  }
  var fetcher = W.tapResults(function (graphQLParams, fetcherOpts) {
    var headers = withSession(fetcherOpts && fetcherOpts.headers);
    return fetcherFor(headers)(
      graphQLParams,
      Object.assign({}, fetcherOpts, { headers: headers })
    );
  });

  var signIn = W.signInPlugin(httpUrl);
  var explorer = GraphiQLPluginExplorer.explorerPlugin({ showAttribution: false });
  var reactRoot = ReactDOM.createRoot(root);
  var ids = null;
  var generation = 0;

  // GraphiQL reads its tabs once, when it mounts: after a sign-in the example tabs get their
  // variables (in storage, see fillStoredTabs) and GraphiQL is mounted afresh.
  function mount(visiblePlugin) {
    generation += 1;
    reactRoot.render(
      h(
        GraphiQL,
        {
          key: generation,
          fetcher: fetcher,
          defaultTabs: W.exampleTabs(examples, ids),
          plugins: [signIn, explorer, W.chartPlugin],
          visiblePlugin: visiblePlugin,
          isHeadersEditorEnabled: true,
          // A token in localStorage outlives the tab and is readable by any script on this
          // origin: headers typed in the pane are kept only when the user opts in with
          // Settings → "Persist headers" (the sign-in panel has its own "remember" box).
          showPersistHeadersSettings: true,
        },
        h(GraphiQL.Logo, null, "FinVision ", h(W.SignedInAs))
      )
    );
  }

  function fillExamples(session) {
    return W.scenarioIdsByKind(httpUrl, session.token, W.neededKinds(examples)).then(
      function (found) {
        ids = found;
        if (found) {
          W.fillStoredTabs(examples, found);
        }
      },
      function () {
        ids = null;
      }
    );
  }

  W.onSession(function (session) {
    if (session) {
      fillExamples(session).then(function () {
        mount(explorer);
      });
    }
  });

  // A remembered session is checked before use: an expired or revoked token is dropped.
  var remembered = W.rememberedSession();
  if (remembered) {
    W.request(httpUrl, "query WorkbenchMe { me { displayName email } }", {}, remembered.token)
      .then(function (data) {
        if (!data.me) {
          throw new Error("signed out");
        }
        remembered.user = data.me;
        W.setSession(remembered);
      })
      .catch(function () {
        W.setSession(null);
        mount(signIn);
      });
  } else {
    mount(signIn);
  }
})();
