/* Client-side helpers of the dldiag app (loaded by Dash from assets/). */

/* Exports. A figure on screen keeps room at its top for plotly's toolbar; an exported one does
   not (no blank band above the title), and it is saved at its export size (16:9 for the wide
   panels, square for the confusion matrix; the toolbar options carry it, see
   figures.graph_config), PNG at scale 2. The toolbar's PNG and SVG buttons and the panels' bar
   buttons all save this way. */
var TOOLBAR_ROOM = 18;  /* figures.TOOLBAR_PX - figures.EXPORT_TOP_PX */
function dldiagExport(P, gd, format) {
  var holder = gd.closest('.dash-graph') || gd.parentElement;
  var id = (holder && holder.id) || 'figure';
  var options = (gd._context && gd._context.toImageButtonOptions) || {};
  var layout = Object.assign({}, gd.layout);
  layout.margin = Object.assign({}, layout.margin || {});
  if (layout.margin.t) { layout.margin.t = Math.max(layout.margin.t - TOOLBAR_ROOM, 0); }
  if (layout.title && typeof layout.title === 'object' && layout.title.pad && layout.title.pad.t) {
    layout.title = Object.assign({}, layout.title, {pad: Object.assign({}, layout.title.pad,
      {t: Math.max(layout.title.pad.t - TOOLBAR_ROOM, 0)})});
  }
  return P.downloadImage({data: gd.data, layout: layout}, {
    format: format, scale: format === 'png' ? 2 : 1, filename: 'dldiag-' + id.replace(/-graph$/, ''),
    width: options.width || gd._fullLayout.width, height: options.height || gd._fullLayout.height});
}

/* The toolbar's buttons: made once (see below), added to every Plotly.react/newPlot call, since
   buttons with a click function cannot travel in a dcc.Graph config (JSON). Plotly.react compares
   the new config with the old one, and a new button object (a new click function) would make every
   update a full newPlot (new WebGL contexts, all data recalculated: ~3x slower updates, measured
   with `python -m dldiag.bench browser`). */
(function () {
  function svgButton(P) {
    if (P.__dldiagSvgButton) { return P.__dldiagSvgButton; }
    return P.__dldiagSvgButton = {
      name: 'dldiagSVG',
      title: 'Download plot as SVG',
      icon: P.Icons && (P.Icons.disk || P.Icons.camera),
      click: function (gd) { dldiagExport(P, gd, 'svg'); }
    };
  }
  function pngButton(P) {
    if (P.__dldiagPngButton) { return P.__dldiagPngButton; }
    return P.__dldiagPngButton = {
      name: 'dldiagPNG',
      title: 'Download plot as PNG',
      icon: P.Icons && P.Icons.camera,
      click: function (gd) { dldiagExport(P, gd, 'png'); }
    };
  }
  function withSvg(P, config) {
    var out = Object.assign({}, config || {});
    var add = (out.modeBarButtonsToAdd || []).slice();
    if (!add.some(function (b) { return b && b.name === 'dldiagPNG'; })) { add.push(pngButton(P)); }
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

/* The window's size, for presentation mode's full-screen figures (the server builds each for the
   height it is drawn at). Sent once the page is up and after a resize settles. */
(function () {
  var sent = null, timer = null;
  function send() {
    if (!window.dash_clientside || !window.dash_clientside.set_props || !document.getElementById('viewport')) {
      timer = setTimeout(send, 300);
      return;
    }
    var size = {w: window.innerWidth, h: window.innerHeight};
    if (sent && Math.abs(sent.w - size.w) < 20 && Math.abs(sent.h - size.h) < 20) { return; }
    sent = size;
    window.dash_clientside.set_props('viewport', {data: size});
  }
  window.addEventListener('resize', function () { clearTimeout(timer); timer = setTimeout(send, 250); });
  window.addEventListener('load', function () { timer = setTimeout(send, 300); });
})();

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
      dldiagExport(window.Plotly, gd, id.fmt);
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
