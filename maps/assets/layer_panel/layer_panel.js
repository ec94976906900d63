/* Grouped, collapsible layer panel of the coverage map (written for this project; no plugin).
 *
 * One <details> section per facility kind holding its sub-layers as checkboxes, and one section
 * for the shared layers (planning targets, base map).  Labels are set with textContent, never as
 * HTML, so names from the data cannot inject markup.  Opening a kind's section shows that kind's
 * part of the legend (#sc-legend [data-legend]).
 *
 * The walk network is shipped once for all kinds (cfg.streets): per street a flat array of
 * delta-encoded coordinates in 1e-6 degrees [lat0, lon0, dlat1, dlon1, ...], and per kind one
 * character per street giving its minute class ("0" = first class).  A kind's street layer is
 * built on first use: one polyline per class, so thousands of streets cost a few SVG paths.
 * Entries with "fallback" are switched on when the base map's tiles fail before any loads (an
 * intranet without the tile server): the network then stands in for the missing streets.
 */
(function () {
  "use strict";

  function decode(flat) {
    var out = [];
    var lat = 0;
    var lon = 0;
    for (var i = 0; i + 1 < flat.length; i += 2) {
      lat += flat[i];
      lon += flat[i + 1];
      out.push([lat / 1e6, lon / 1e6]);
    }
    return out;
  }

  function streetLayer(streets, entry) {
    var classes = streets.c[entry.streets];
    var parts = [];
    for (var i = 0; i < classes.length; i++) {
      var c = classes.charCodeAt(i) - 48;
      if (!parts[c]) { parts[c] = []; }
      parts[c].push(streets.lines[i]);
    }
    var group = L.layerGroup();
    parts.forEach(function (lines, c) {
      var style = L.extend({}, entry.styles[c], { pane: entry.pane, interactive: false });
      group.addLayer(L.polyline(lines, style));
    });
    return group;
  }

  function showLegend(key) {
    var parts = document.querySelectorAll("#sc-legend [data-legend]");
    for (var i = 0; i < parts.length; i++) {
      parts[i].hidden = parts[i].getAttribute("data-legend") !== key;
    }
  }

  L.Control.ScLayers = L.Control.extend({
    options: { position: "topright" },

    initialize: function (config, refs, options) {
      L.setOptions(this, options);
      this._config = config;
      this._refs = refs;
    },

    onAdd: function (map) {
      var cfg = this._config;
      var self = this;
      this._fallbacks = [];
      if (cfg.streets) {
        cfg.streets.lines = cfg.streets.xy.map(decode);
      }
      var box = L.DomUtil.create("div", "sc-layers leaflet-control");
      box.id = "sc-layers";
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      var head = L.DomUtil.create("div", "sc-layers-head", box);
      L.DomUtil.create("span", "", head).textContent = cfg.title;
      var fold = L.DomUtil.create("button", "sc-layers-fold", head);
      fold.type = "button";
      fold.textContent = "\u2212";
      fold.title = cfg.fold;
      var body = L.DomUtil.create("div", "sc-layers-body", box);
      L.DomEvent.on(fold, "click", function () {
        body.hidden = !body.hidden;
        fold.textContent = body.hidden ? "+" : "\u2212";
      });
      cfg.groups.forEach(function (group) {
        var section = L.DomUtil.create("details", "sc-group", body);
        section.open = !!group.open;
        if (group.legend) { section.setAttribute("data-legend", group.legend); }
        var summary = L.DomUtil.create("summary", "", section);
        if (group.colour) {
          L.DomUtil.create("span", "sc-dot", summary).style.background = group.colour;
        }
        L.DomUtil.create("span", "", summary).textContent = group.title;
        section.addEventListener("toggle", function () {
          if (section.open && group.legend) { showLegend(group.legend); }
        });
        group.layers.forEach(function (entry) { self._row(map, section, entry); });
      });
      var tiles = cfg.tiles ? this._refs[cfg.tiles] : null;
      if (tiles) {
        var loaded = false;
        tiles.on("tileload", function () { loaded = true; });
        tiles.once("tileerror", function () {
          if (!loaded) { self._fallbacks.forEach(function (on) { on(); }); }
        });
      }
      return box;
    },

    _row: function (map, section, entry) {
      var cfg = this._config;
      var layer = entry.ref ? this._refs[entry.ref] : null;
      var get = function () {
        if (!layer) { layer = streetLayer(cfg.streets, entry); }
        return layer;
      };
      var row = L.DomUtil.create("label", "sc-layer", section);
      var input = L.DomUtil.create("input", "", row);
      input.type = "checkbox";
      L.DomUtil.create("span", "", row).textContent = entry.name;
      if (!entry.ref && entry.show) { map.addLayer(get()); }
      input.checked = !!layer && map.hasLayer(layer);
      L.DomEvent.on(input, "change", function () {
        if (input.checked) { map.addLayer(get()); } else if (layer) { map.removeLayer(layer); }
      });
      if (entry.fallback) {
        this._fallbacks.push(function () {
          if (!input.checked) { input.checked = true; map.addLayer(get()); }
        });
      }
    }
  });

  L.control.scLayers = function (config, refs, options) {
    return new L.Control.ScLayers(config, refs, options);
  };
})();
