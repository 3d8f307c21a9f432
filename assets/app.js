/* Client-side helpers of the dldiag app (loaded by Dash from assets/). */

/* Every figure's toolbar gets a "Download plot as SVG" button next to plotly's camera (which
   saves PNG at 2x, see GRAPH_CONFIG). Buttons with a click function cannot travel in a dcc.Graph
   config (JSON), so they are added here, to every Plotly.react/newPlot call. The button is made
   once: Plotly.react compares the new config with the old one, and a new button object (a new
   click function) would make every update a full newPlot (new WebGL contexts, all data
   recalculated: ~3x slower updates, measured with `python -m dldiag.bench browser`). */
(function () {
  function svgButton(P) {
    if (P.__dldiagSvgButton) { return P.__dldiagSvgButton; }
    return P.__dldiagSvgButton = {
      name: 'dldiagSVG',
      title: 'Download plot as SVG',
      icon: P.Icons && (P.Icons.disk || P.Icons.camera),
      click: function (gd) {
        var holder = gd.closest('.dash-graph') || gd.parentElement;
        var id = (holder && holder.id) || 'figure';
        P.downloadImage(gd, {format: 'svg', filename: 'dldiag-' + id.replace(/-graph$/, '')});
      }
    };
  }
  function withSvg(P, config) {
    var out = Object.assign({}, config || {});
    var add = (out.modeBarButtonsToAdd || []).slice();
    if (!add.some(function (b) { return b && b.name === 'dldiagSVG'; })) { add.push(svgButton(P)); }
    out.modeBarButtonsToAdd = add;
    return out;
  }
  function wrap(P) {
    if (!P || P.__dldiagSvg || typeof P.react !== 'function') { return P; }
    ['react', 'newPlot'].forEach(function (name) {
      var orig = P[name];
      P[name] = function (gd, data, layout, config) {
        if (data && !Array.isArray(data) && typeof data === 'object') {  // Plotly.react(gd, figure)
          return orig.call(P, gd, Object.assign({}, data, {config: withSvg(P, data.config)}));
        }
        return orig.call(P, gd, data, layout, withSvg(P, config));
      };
    });
    P.__dldiagSvg = true;
    return P;
  }
  var current = wrap(window.Plotly);
  Object.defineProperty(window, 'Plotly', {
    configurable: true, enumerable: true,
    get: function () { return current; },
    set: function (value) { current = wrap(value); }
  });
})();

/* Presentation mode: the arrow keys (and Page Up/Down, as a presenter's clicker sends) step between
   panels. The step goes to the reducer through the `slide-key` store, so the URL follows. */
document.addEventListener('keydown', function (event) {
  if (!document.querySelector('.app.present') || !window.dash_clientside || !window.dash_clientside.set_props) {
    return;
  }
  var target = event.target;
  if (target && (target.tagName === 'INPUT' || target.tagName === 'TEXTAREA' || target.isContentEditable)) { return; }
  var step = {ArrowRight: 1, PageDown: 1, ArrowLeft: -1, PageUp: -1}[event.key];
  if (!step) { return; }
  event.preventDefault();
  window.dash_clientside.set_props('slide-key', {data: {step: step, at: Date.now()}});
});

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  dldiag: {
    /* The PNG/SVG buttons of a panel's bar: plotly.js's own exporter (PNG at 2x). */
    saveImage: function (_clicks) {
      var cc = window.dash_clientside.callback_context;
      var id = cc && cc.triggered_id;
      if (!id || !id.graph) { return window.dash_clientside.no_update; }
      /* Buttons added later (the experiments tab's) fire this once with n_clicks 0: not a click. */
      var clicked = (cc.triggered || []).some(function (t) { return t && t.value; });
      if (!clicked) { return window.dash_clientside.no_update; }
      var holder = document.getElementById(id.graph);
      var gd = holder && (holder.classList.contains('js-plotly-plot') ? holder : holder.querySelector('.js-plotly-plot'));
      if (!gd || !window.Plotly) { return window.dash_clientside.no_update; }
      var name = 'dldiag-' + id.graph.replace(/-graph$/, '');
      window.Plotly.downloadImage(gd, {format: id.fmt, scale: id.fmt === 'png' ? 2 : 1, filename: name});
      return {graph: id.graph, fmt: id.fmt, at: Date.now()};
    },
    /* The tabs: show one view, keep the other mounted (its figures stay drawn). */
    showTab: function (tab) {
      var shown = {display: 'block'}, hidden = {display: 'none'};
      return tab === 'experiments' ? [hidden, shown] : [shown, hidden];
    },
    /* The loading page: reload into the app once the workspace is ready. */
    reloadWhenReady: function (ready) {
      if (ready) { window.location.reload(); return true; }
      return window.dash_clientside.no_update;
    }
  }
});
