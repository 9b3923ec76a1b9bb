// FinVision analyst's workbench: the parts of the GraphiQL page that are ours.
//
// Defines `window.FinVisionWorkbench` for boot.js: the session (sign-in panel), the example tabs
// and the Chart view. No inline script, no remote origin: it runs under the page's CSP and only
// talks to the GraphQL endpoint of the page's own server.
(function () {
  "use strict";

  var h = React.createElement;
  var REMEMBER_KEY = "finvision:session";

  // ---- the session ------------------------------------------------------------------------
  //
  // The token lives in this variable for the page's lifetime; it is written to localStorage only
  // when the user ticks "remember on this browser" (a stored token outlives the tab and is
  // readable by any script of this origin, so that is the user's choice, not the default).
  var session = null;
  var sessionListeners = [];

  function setSession(next) {
    session = next;
    if (next && next.remember) {
      localStorage.setItem(REMEMBER_KEY, JSON.stringify(next));
    } else {
      localStorage.removeItem(REMEMBER_KEY);
    }
    sessionListeners.slice().forEach(function (listener) {
      listener(next);
    });
  }

  function onSession(listener) {
    sessionListeners.push(listener);
    return function () {
      sessionListeners = sessionListeners.filter(function (l) {
        return l !== listener;
      });
    };
  }

  function rememberedSession() {
    try {
      var stored = JSON.parse(localStorage.getItem(REMEMBER_KEY) || "null");
      return stored && typeof stored.token === "string" ? stored : null;
    } catch (e) {
      return null;
    }
  }

  // One GraphQL request over HTTP (sign-in, sign-out, filling the examples), with the session's
  // token when there is one. Resolves to `data`; rejects with the first error's message.
  function request(endpoint, query, variables, token) {
    var headers = { "content-type": "application/json" };
    if (token) {
      headers.authorization = "Bearer " + token;
    }
    return fetch(endpoint, {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ query: query, variables: variables || {} }),
    })
      .then(function (response) {
        return response.json();
      })
      .then(function (result) {
        if (result.errors && result.errors.length) {
          throw new Error(result.errors[0].message);
        }
        return result.data;
      });
  }

  // ---- the examples -------------------------------------------------------------------------
  //
  // The README's analyst queries (examples.json, embedded in the page) become tabs. Their
  // variables name scenarios by kind ("fill": {"base": "BASE"}); the ids are looked up with the
  // signed-in user's own token, so a tab only ever shows ids the user may read.
  var PLACEHOLDER = "(sign in to fill)";

  function placeholderVariables(example) {
    var names = Object.keys(example.fill || {});
    if (!names.length) {
      return "";
    }
    var vars = {};
    names.forEach(function (name) {
      vars[name] = PLACEHOLDER;
    });
    return JSON.stringify(vars, null, 2);
  }

  var SCENARIOS_QUERY =
    "query WorkbenchScenarios { me { organizations(first: 20) { nodes { models(first: 50) { nodes {" +
    " periodGranularity scenarios(first: 50) { nodes { id kind } } } } } } } }";

  // Scenario ids by kind from the caller's first model that has every kind the examples need
  // (monthly models first: the examples' periods are months).
  function scenarioIdsByKind(endpoint, token, kinds) {
    return request(endpoint, SCENARIOS_QUERY, {}, token).then(function (data) {
      var models = [];
      ((data.me && data.me.organizations.nodes) || []).forEach(function (org) {
        models = models.concat(org.models.nodes);
      });
      models.sort(function (a, b) {
        return (b.periodGranularity === "MONTH") - (a.periodGranularity === "MONTH");
      });
      for (var i = 0; i < models.length; i++) {
        var ids = {};
        models[i].scenarios.nodes.forEach(function (s) {
          if (!(s.kind in ids)) {
            ids[s.kind] = s.id;
          }
        });
        if (
          kinds.every(function (kind) {
            return kind in ids;
          })
        ) {
          return ids;
        }
      }
      return null;
    });
  }

  function filledVariables(example, ids) {
    var names = Object.keys(example.fill || {});
    if (!names.length) {
      return "";
    }
    var vars = {};
    names.forEach(function (name) {
      vars[name] = ids ? ids[example.fill[name]] : PLACEHOLDER;
    });
    return JSON.stringify(vars, null, 2);
  }

  // The example tabs for a fresh browser, and the stored tabs of a browser that has been here
  // before with the placeholders replaced (GraphiQL reads its tabs from localStorage
  // "graphiql:tabState" when it mounts; boot.js remounts it after a sign-in).
  function exampleTabs(examples, ids) {
    return examples.map(function (example) {
      return { query: example.query, variables: filledVariables(example, ids) };
    });
  }

  function fillStoredTabs(examples, ids) {
    var key = "graphiql:tabState";
    var state;
    try {
      state = JSON.parse(localStorage.getItem(key) || "null");
    } catch (e) {
      return;
    }
    if (!state || !Array.isArray(state.tabs)) {
      return;
    }
    state.tabs.forEach(function (tab) {
      var example = examples.find(function (e) {
        return e.query === tab.query;
      });
      if (example && (tab.variables || "").indexOf(PLACEHOLDER) >= 0) {
        tab.variables = filledVariables(example, ids);
      }
    });
    localStorage.setItem(key, JSON.stringify(state));
  }

  function neededKinds(examples) {
    var kinds = [];
    examples.forEach(function (example) {
      Object.keys(example.fill || {}).forEach(function (name) {
        if (kinds.indexOf(example.fill[name]) < 0) {
          kinds.push(example.fill[name]);
        }
      });
    });
    return kinds;
  }

  // ---- results, for the Chart view ----------------------------------------------------------
  var lastResult = null;
  var resultListeners = [];

  function publishResult(result) {
    lastResult = result;
    resultListeners.slice().forEach(function (listener) {
      listener(result);
    });
  }

  // An async iterable that publishes each value it passes on. Not an async generator: GraphiQL's
  // stop button calls `return()`, which must reach the subscription at once, not after its next
  // event.
  function tapIterable(iterable) {
    var inner = iterable[Symbol.asyncIterator]();
    var tapped = {
      next: function () {
        return inner.next().then(function (step) {
          if (!step.done) {
            publishResult(step.value);
          }
          return step;
        });
      },
      return: function (value) {
        return inner.return ? inner.return(value) : Promise.resolve({ done: true, value: value });
      },
    };
    tapped[Symbol.asyncIterator] = function () {
      return tapped;
    };
    return tapped;
  }

  // Wraps a GraphiQL fetcher so that every result also reaches the Chart view. The fetcher
  // resolves to a result or (multipart responses, subscriptions) to an async iterable of them.
  function tapResults(fetcher) {
    return function (params, opts) {
      return Promise.resolve(fetcher(params, opts)).then(function (value) {
        if (value && typeof value[Symbol.asyncIterator] === "function") {
          return tapIterable(value);
        }
        publishResult(value);
        return value;
      });
    };
  }

  // ---- the chart ----------------------------------------------------------------------------
  var UNIT_LABELS = { CURRENCY: "currency", PERCENT: "%", RATIO: "ratio", NUMBER: "number" };
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];

  function isMetricEntry(entry) {
    return entry && typeof entry === "object" && entry.metric && Array.isArray(entry.points);
  }

  // Every list of MetricSeries / MetricComparison in a result, with the name of the scenario
  // that holds it (the `name` next to `series` / `compare`, else the field's name).
  function metricLists(value, found) {
    found = found || [];
    if (Array.isArray(value)) {
      value.forEach(function (item) {
        metricLists(item, found);
      });
    } else if (value && typeof value === "object") {
      Object.keys(value).forEach(function (key) {
        var field = value[key];
        if (Array.isArray(field) && field.length && field.every(isMetricEntry)) {
          found.push({ scenario: typeof value.name === "string" ? value.name : key, entries: field });
        } else {
          metricLists(field, found);
        }
      });
    }
    return found;
  }

  function number(decimal) {
    if (decimal === null || decimal === undefined) {
      return null;
    }
    var n = Number(decimal);
    return Number.isFinite(n) ? n : null;
  }

  // Lines (one per metric and scenario; a comparison gives two) and bars (a comparison's
  // deltas), each {label, unit, bar, values: {period: Decimal string | null}}.
  function traces(result) {
    var out = [];
    metricLists(result && result.data).forEach(function (list) {
      list.entries.forEach(function (entry) {
        var metric = entry.metric.name || entry.metric.key || "metric";
        var unit = entry.metric.unit || "";
        var first = entry.points[0] || {};
        var add = function (label, bar, field) {
          var values = {};
          entry.points.forEach(function (p) {
            values[p.period] = p[field] === undefined ? null : p[field];
          });
          out.push({ label: label, unit: unit, bar: bar, values: values });
        };
        if ("value" in first) {
          add(metric + " · " + list.scenario, false, "value");
        } else {
          if ("base" in first) add(metric + " · " + list.scenario, false, "base");
          if ("other" in first) add(metric + " · other scenario", false, "other");
          if ("delta" in first) add("Δ " + metric, true, "delta");
        }
      });
    });
    return out;
  }

  function periodsOf(list) {
    var periods = {};
    list.forEach(function (t) {
      Object.keys(t.values).forEach(function (p) {
        periods[p] = true;
      });
    });
    return Object.keys(periods).sort();
  }

  // CSV of every trace, periods as rows; values are the API's Decimal strings, unrounded.
  function csv(list) {
    var quote = function (text) {
      return /[",\n]/.test(text) ? '"' + text.replace(/"/g, '""') + '"' : text;
    };
    var rows = [["period"].concat(list.map(function (t) {
      return t.label + (t.unit ? " (" + (UNIT_LABELS[t.unit] || t.unit) + ")" : "");
    })).map(quote).join(",")];
    periodsOf(list).forEach(function (period) {
      rows.push([period].concat(list.map(function (t) {
        var v = t.values[period];
        return v === null || v === undefined ? "" : String(v);
      })).map(quote).join(","));
    });
    return rows.join("\n") + "\n";
  }

  function withZero(u, min, max) {
    var lo = Math.min(0, min);
    var hi = Math.max(0, max);
    var pad = (hi - lo) * 0.05 || 1;
    return [lo < 0 ? lo - pad : 0, hi > 0 ? hi + pad : 0];
  }

  // One uPlot chart per unit: lines on the left axis, a comparison's deltas as bars on the right.
  function drawCharts(container, list) {
    var groups = {};
    list.forEach(function (t) {
      (groups[t.unit] = groups[t.unit] || []).push(t);
    });
    var charts = [];
    Object.keys(groups).forEach(function (unit, g) {
      var group = groups[unit];
      var periods = periodsOf(group);
      var label = UNIT_LABELS[unit] || unit || "value";
      var hasBars = group.some(function (t) {
        return t.bar;
      });
      var data = [periods.map(function (p) {
        return Date.parse(p + "T00:00:00Z") / 1000;
      })].concat(group.map(function (t) {
        return periods.map(function (p) {
          return number(t.values[p]);
        });
      }));
      // PERCENT values are fractions (0.25 is 25 %, as in the XLSX reports' `0.00%`).
      var ticks = unit === "PERCENT"
        ? function (u, splits) {
            return splits.map(function (v) {
              return +(v * 100).toFixed(2) + "%";
            });
          }
        : undefined;
      var axes = [{}, { scale: "y", label: label, size: 70, values: ticks }];
      if (hasBars) {
        axes.push({ scale: "d", side: 1, label: "Δ " + label, size: 70, values: ticks, grid: { show: false } });
      }
      var box = document.createElement("div");
      box.className = "fv-chart";
      box.setAttribute("data-unit", unit);
      box.setAttribute("data-series", String(group.length));
      container.appendChild(box);
      var width = Math.max(280, container.clientWidth - 8);
      // Kept on the element for the console (and the browser test): uPlot draws on a canvas.
      box.uplot = new uPlot({
        title: label,
        width: width,
        height: 260,
        // Periods are dates: shown as such whatever the browser's time zone.
        tzDate: function (ts) {
          return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC");
        },
        // Bars grow from zero, so the delta scale always holds it.
        scales: { x: { time: true }, y: {}, d: { range: withZero } },
        axes: axes,
        series: [{ label: "period" }].concat(group.map(function (t, i) {
          var color = COLORS[(i + g * 3) % COLORS.length];
          return t.bar
            ? {
                label: t.label,
                scale: "d",
                stroke: color,
                fill: color + "66",
                width: 1,
                paths: uPlot.paths.bars({ size: [0.6, 40] }),
                points: { show: false },
              }
            : { label: t.label, scale: "y", stroke: color, width: 2, spanGaps: false };
        })),
      }, data, box);
      charts.push(box.uplot);
    });
    return charts;
  }

  function ChartView() {
    var state = React.useState(lastResult);
    var result = state[0];
    var setResult = state[1];
    var copied = React.useState("");
    var ref = React.useRef(null);
    React.useEffect(function () {
      resultListeners.push(setResult);
      return function () {
        resultListeners = resultListeners.filter(function (l) {
          return l !== setResult;
        });
      };
    }, []);
    var list = React.useMemo(function () {
      return traces(result);
    }, [result]);
    React.useEffect(function () {
      var container = ref.current;
      if (!container || !list.length) {
        return undefined;
      }
      var charts = drawCharts(container, list);
      // The plugin pane is resizable: the charts follow its width.
      var observer = new ResizeObserver(function () {
        var width = Math.max(280, container.clientWidth - 8);
        charts.forEach(function (chart) {
          if (chart.width !== width) {
            chart.setSize({ width: width, height: 260 });
          }
        });
      });
      observer.observe(container);
      return function () {
        observer.disconnect();
        charts.forEach(function (chart) {
          chart.destroy();
        });
        container.textContent = "";
      };
    }, [list]);
    var copy = function () {
      var text = csv(list);
      var done = function () {
        copied[1]("Copied " + (text.split("\n").length - 2) + " rows.");
      };
      navigator.clipboard.writeText(text).then(done, function (error) {
        copied[1]("Could not copy: " + error.message);
      });
    };
    return h("div", { className: "fv-panel" },
      h("div", { className: "graphiql-doc-explorer-title" }, "Chart"),
      list.length
        ? h("div", null,
            h("button", { type: "button", className: "graphiql-button fv-copy", onClick: copy }, "Copy as CSV"),
            h("span", { className: "fv-note", role: "status" }, copied[0]))
        : h("p", { className: "fv-note" },
            "Run a query that selects a scenario's series or compare (for example the Compare tab): " +
            "each metric and scenario becomes a line, a comparison's deltas become bars."),
      h("div", { ref: ref, className: "fv-charts" }));
  }

  // ---- the sign-in panel --------------------------------------------------------------------
  var LOGIN =
    "mutation WorkbenchLogin($email: String!, $password: String!) {" +
    " login(email: $email, password: $password) { token expiresAt user { displayName email } } }";

  function SignInPanel(props) {
    var current = React.useState(session);
    var email = React.useState("");
    var password = React.useState("");
    var remember = React.useState(false);
    var error = React.useState("");
    var busy = React.useState(false);
    React.useEffect(function () {
      return onSession(current[1]);
    }, []);
    var s = current[0];
    if (s) {
      var signOut = function () {
        var token = s.token;
        setSession(null);
        // Revokes the session on the server too; the page has forgotten it either way.
        request(props.endpoint, "mutation WorkbenchLogout { logout }", {}, token).catch(function () {});
      };
      return h("div", { className: "fv-panel" },
        h("div", { className: "graphiql-doc-explorer-title" }, "Signed in"),
        h("p", { className: "fv-who" }, s.user.displayName, h("br"), h("span", { className: "fv-note" }, s.user.email)),
        h("p", { className: "fv-note" },
          (s.remember ? "Remembered on this browser" : "For this page only") +
          "; every request carries the header Authorization: Bearer …, and subscriptions send it in connection_init."),
        h("button", { type: "button", className: "graphiql-button", onClick: signOut }, "Sign out"));
    }
    var submit = function (event) {
      event.preventDefault();
      busy[1](true);
      error[1]("");
      request(props.endpoint, LOGIN, { email: email[0], password: password[0] })
        .then(function (data) {
          setSession({
            token: data.login.token,
            expiresAt: data.login.expiresAt,
            user: data.login.user,
            remember: remember[0],
          });
        })
        .catch(function (e) {
          error[1](e.message);
          busy[1](false);
        });
    };
    var field = function (label, type, value, set, auto) {
      return h("label", { className: "fv-field" }, label,
        h("input", {
          type: type,
          value: value,
          autoComplete: auto,
          required: true,
          onChange: function (e) {
            set(e.target.value);
          },
        }));
    };
    return h("form", { className: "fv-panel", onSubmit: submit },
      h("div", { className: "graphiql-doc-explorer-title" }, "Sign in"),
      field("Email", "email", email[0], email[1], "username"),
      field("Password", "password", password[0], password[1], "current-password"),
      h("label", { className: "fv-check" },
        h("input", {
          type: "checkbox",
          checked: remember[0],
          onChange: function (e) {
            remember[1](e.target.checked);
          },
        }),
        " Remember on this browser"),
      h("button", { type: "submit", className: "graphiql-button", disabled: busy[0] }, "Sign in"),
      error[0] ? h("p", { className: "fv-error", role: "alert" }, error[0]) : null,
      h("p", { className: "fv-note" }, "With serve --seed-demo, the demo accounts' passwords are printed on the console."));
  }

  // Who is signed in, next to the GraphiQL logo.
  function SignedInAs() {
    var current = React.useState(session);
    React.useEffect(function () {
      return onSession(current[1]);
    }, []);
    return h("span", { className: "fv-signed-in" },
      current[0] ? "Signed in as " + current[0].user.displayName : "Not signed in");
  }

  // ---- icons --------------------------------------------------------------------------------
  function icon(path) {
    return function Icon(props) {
      return h("svg", Object.assign({ viewBox: "0 0 24 24", width: "1em", height: "1em", fill: "none",
        stroke: "currentColor", strokeWidth: 1.6 }, props), h("path", { d: path }));
    };
  }

  window.FinVisionWorkbench = {
    session: function () {
      return session;
    },
    setSession: setSession,
    onSession: onSession,
    rememberedSession: rememberedSession,
    request: request,
    tapResults: tapResults,
    exampleTabs: exampleTabs,
    placeholderVariables: placeholderVariables,
    fillStoredTabs: fillStoredTabs,
    neededKinds: neededKinds,
    scenarioIdsByKind: scenarioIdsByKind,
    SignedInAs: SignedInAs,
    signInPlugin: function (endpoint) {
      return {
        title: "Sign in",
        icon: icon("M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8Zm-7 8c0-3.3 3.1-6 7-6s7 2.7 7 6"),
        content: function () {
          return h(SignInPanel, { endpoint: endpoint });
        },
      };
    },
    chartPlugin: {
      title: "Chart",
      icon: icon("M4 20V4M4 20h16M7 15l4-5 3 3 5-7"),
      content: function () {
        return h(ChartView);
      },
    },
    // For tests and the console: the traces and CSV of a result.
    traces: traces,
    csv: csv,
  };
})();
