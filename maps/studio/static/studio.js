/* The planner's studio page: every number comes from the JSON API (GET /api/summary etc.);
   names from the data are only ever set as text (textContent), never as HTML. */
(function () {
  "use strict";
  var TEXTS = JSON.parse(document.getElementById("texts").textContent);
  var params = new URLSearchParams(location.search);
  var TOKEN = params.get("token") || "";
  var lang = document.body.dataset.lang === "en" ? "en" : "zh";
  var S = { summary: null, state: null, base: null, kind: null, adding: false, ready: false,
            edits: 0, busy: 0, lastEdit: 0, suggestion: null, compare: null };
  window.studio = S;

  function T(key) { return (TEXTS[lang] && TEXTS[lang][key]) || key; }
  function $(id) { return document.getElementById(id); }
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(1) + "%"; }
  function num(v) { return v === null || v === undefined ? "–" : Math.round(v).toLocaleString(); }
  function label(kind) {
    var l = S.state && S.state.layers[kind];
    return l ? (lang === "en" ? l.label_en : l.label_zh) : kind;
  }

  function api(method, path, body) {
    var opts = { method: method, headers: { "X-Studio-Token": TOKEN } };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    S.busy += 1; $("busy").hidden = false;
    return fetch(path, opts).then(function (r) {
      return r.json().then(function (doc) {
        S.busy -= 1; $("busy").hidden = S.busy === 0;
        if (!r.ok) { throw new Error(doc.error || ("HTTP " + r.status)); }
        $("error").textContent = "";
        return doc;
      });
    }).catch(function (err) {
      if (S.busy > 0) { S.busy -= 1; }
      $("busy").hidden = S.busy === 0;
      $("error").textContent = T("error") + ": " + err.message;
      throw err;
    });
  }

  // ------------------------------------------------------------------ colours and legend
  var MIN_COLOURS = ["#1a9850", "#91cf60", "#fee08b", "#fc8d59", "#d73027"];
  var NONE = "#9e9e9e";
  function thresholds() { return S.state.layers[S.kind].thresholds_min; }
  function minuteColour(m) {
    if (m === null || m === undefined) return NONE;
    var th = thresholds();
    for (var i = 0; i < th.length; i++) {
      if (m <= th[i] + 1e-9) return MIN_COLOURS[Math.min(i, MIN_COLOURS.length - 2)];
    }
    return MIN_COLOURS[MIN_COLOURS.length - 1];
  }
  var COV = [[0.9, "#1a9850"], [0.7, "#a6d96a"], [0.5, "#fdae61"], [0, "#d73027"]];
  function covColour(v) {
    if (v === null || v === undefined) return "#ffffff";
    for (var i = 0; i < COV.length; i++) if (v >= COV[i][0]) return COV[i][1];
    return COV[COV.length - 1][1];
  }

  var legend = L.control({ position: "bottomleft" });
  legend.onAdd = function () { this._div = L.DomUtil.create("div", "legend"); return this._div; };
  function drawLegend() {
    var d = legend._div; d.textContent = "";
    d.appendChild(el("b", T("legend_minutes") + " · " + label(S.kind)));
    var th = thresholds(), lo = 0;
    th.forEach(function (t, i) {
      var row = el("div"); var sw = el("i");
      sw.style.background = MIN_COLOURS[Math.min(i, MIN_COLOURS.length - 2)];
      row.appendChild(sw); row.appendChild(document.createTextNode(lo + "–" + t + " " + T("min")));
      d.appendChild(row); lo = t;
    });
    var over = el("div"); var s2 = el("i"); s2.style.background = MIN_COLOURS[4];
    over.appendChild(s2); over.appendChild(document.createTextNode("> " + lo + " " + T("min"))); d.appendChild(over);
    var un = el("div"); var s3 = el("i"); s3.style.background = NONE;
    un.appendChild(s3); un.appendChild(document.createTextNode(T("unreached"))); d.appendChild(un);
    var fac = el("div"); var s4 = el("i"); s4.style.background = "#1a237e";
    fac.appendChild(s4); fac.appendChild(document.createTextNode(T("facility_layer"))); d.appendChild(fac);
    var gap = el("div"); var s5 = el("i"); s5.style.background = "rgba(255,82,82,.35)";
    s5.style.border = "1.5px solid #b00020"; gap.appendChild(s5);
    gap.appendChild(document.createTextNode(T("gaps"))); d.appendChild(gap);
    d.appendChild(el("b", T("legend_coverage")));
    [["≥ 90%", 0], ["70–90%", 1], ["50–70%", 2], ["< 50%", 3]].forEach(function (c) {
      var row = el("div"); var sw = el("i"); sw.style.background = COV[c[1]][1];
      sw.style.opacity = 0.6; row.appendChild(sw); row.appendChild(document.createTextNode(c[0]));
      d.appendChild(row);
    });
  }

  // ------------------------------------------------------------------------- the map
  var map = L.map("map", { preferCanvas: true, zoomControl: true });
  var canvas = L.canvas({ padding: 0.3 });
  var areaLayer = L.geoJSON(null, { style: function () { return {}; } }).addTo(map);
  var streetLayer = L.layerGroup().addTo(map);
  var gapLayer = L.geoJSON(null).addTo(map);
  var residentLayer = L.layerGroup().addTo(map);
  var facilityLayer = L.layerGroup().addTo(map);
  var suggestLayer = L.layerGroup().addTo(map);
  var compareLayer = L.layerGroup().addTo(map);
  var control = L.control.layers(null, {}, { collapsed: false, position: "topright" }).addTo(map);
  legend.addTo(map);
  var streetLines = [], residentDots = [];

  function namedOverlays() {
    control.remove();
    var o = {};
    o[T("areas")] = areaLayer; o[T("network")] = streetLayer; o[T("gaps")] = gapLayer;
    o[T("residents")] = residentLayer; o[T("facility_layer")] = facilityLayer;
    control = L.control.layers(null, o, { collapsed: false, position: "topright" }).addTo(map);
  }

  function drawBase(base) {
    base.streets.forEach(function (coords) {
      var line = L.polyline(coords.map(function (c) { return [c[1], c[0]]; }),
        { renderer: canvas, weight: 2, opacity: 0.85, color: NONE, interactive: false });
      streetLines.push(line); streetLayer.addLayer(line);
    });
    var r = base.residents;
    for (var i = 0; i < r.lon.length; i++) {
      var dot = L.circleMarker([r.lat[i], r.lon[i]], { renderer: canvas, radius: 3, weight: 0.5,
        color: "#333", fillOpacity: 0.9, interactive: false });
      residentDots.push(dot); residentLayer.addLayer(dot);
    }
    areaLayer.addData(base.areas);
    var b = base.bounds;
    map.fitBounds([[b[1], b[0]], [b[3], b[2]]]);
  }

  function drawLayer(m) {
    m.street_minutes.forEach(function (v, i) { streetLines[i].setStyle({ color: minuteColour(v) }); });
    m.resident_minutes.forEach(function (v, i) { residentDots[i].setStyle({ fillColor: minuteColour(v) }); });
    areaLayer.setStyle(function (f) {
      return { color: "#37474f", weight: 2.5, fillOpacity: 0.2, dashArray: "6 4",
               fillColor: covColour(m.area_coverage[f.properties.area]) };
    });
    areaLayer.eachLayer(function (l) {
      var a = l.feature.properties.area; var box = el("div");
      box.appendChild(el("b", a)); box.appendChild(el("div", label(S.kind) + " " + T("coverage") + " " +
        pct(m.area_coverage[a])));
      l.bindTooltip(box, { sticky: true });
    });
    gapLayer.clearLayers();
    gapLayer.addData(m.gaps);
    gapLayer.setStyle({ color: "#b00020", weight: 1.5, fillColor: "#ff5252", fillOpacity: 0.15, dashArray: null });
    drawLegend();
  }

  function facilityIcon(snapped) {
    return L.divIcon({ className: "fac-icon" + (snapped ? "" : " off"), iconSize: [14, 14] });
  }
  function drawFacilities(fc) {
    facilityLayer.clearLayers();
    fc.features.forEach(function (f) {
      var c = f.geometry.coordinates, id = f.properties.id;
      var m = L.marker([c[1], c[0]], { draggable: true, icon: facilityIcon(f.properties.snapped),
        title: f.properties.name, keyboard: false });
      m.studioId = id;
      var box = el("div"); box.appendChild(el("b", f.properties.name));
      box.appendChild(el("div", label(S.kind) + " · " + id));
      var rm = el("button", T("remove")); rm.type = "button"; rm.className = "remove";
      rm.addEventListener("click", function () { edit("DELETE", "/api/facilities/" + encodeURIComponent(id) + "?layer=" + S.kind); });
      box.appendChild(rm);
      m.bindPopup(box);
      m.on("dragend", function (e) {
        var p = e.target.getLatLng();
        edit("PATCH", "/api/facilities/" + encodeURIComponent(id) + "?layer=" + S.kind,
             { lon: p.lng, lat: p.lat });
      });
      facilityLayer.addLayer(m);
    });
  }

  // ------------------------------------------------------------------------ the panel
  function drawPanel() {
    var s = S.summary, st = S.state;
    $("synthetic").hidden = !s.synthetic; $("synthetic").textContent = T("synthetic");
    $("undo").disabled = !st.can_undo; $("redo").disabled = !st.can_redo;
    var h = $("headline"); h.textContent = "";
    var tbl = el("table"); var head = el("tr"); head.appendChild(el("th", T("layer")));
    var ths = [];
    Object.keys(s.layers).forEach(function (k) {
      Object.keys(s.layers[k].coverage_rate_by_minutes).forEach(function (m) { if (ths.indexOf(m) < 0) ths.push(m); });
    });
    ths.sort(function (a, b) { return a - b; });
    ths.forEach(function (m) { head.appendChild(el("th", m + " " + T("within"))); });
    head.appendChild(el("th", T("facilities"))); tbl.appendChild(head);
    Object.keys(s.layers).forEach(function (k) {
      var L1 = s.layers[k]; var tr = el("tr", null, k === S.kind ? "sel" : "");
      var name = el("td", label(k)); if (k === S.kind) name.style.fontWeight = "bold";
      tr.appendChild(name);
      ths.forEach(function (m) {
        var td = el("td", pct(L1.coverage_rate_by_minutes[m]));
        td.dataset.layer = k; td.dataset.minutes = m; td.className = "rate"; tr.appendChild(td);
      });
      tr.appendChild(el("td", L1.facilities)); tbl.appendChild(tr);
    });
    var cur = s.layers[S.kind];
    var big = el("div", label(S.kind) + " " + cur.headline_minutes + " " + T("within") + " " + T("coverage") + " ");
    var v = el("span", pct(cur.coverage_rate), "big"); v.id = "headline-rate"; big.appendChild(v);
    h.appendChild(big);
    h.appendChild(el("div", T("covered") + " " + num(cur.covered_population) + " / " + num(cur.population), "hint"));
    h.appendChild(tbl);
    $("speed").value = st.layers[S.kind].speed_kmh;
    $("minutes").value = st.layers[S.kind].thresholds_min.join(",");

    var t = $("streets"); t.textContent = "";
    var hr = el("tr"); [T("street"), T("coverage"), T("population"), ""].forEach(function (x) { hr.appendChild(el("th", x)); });
    t.appendChild(hr);
    Object.keys(s.areas).forEach(function (a) {
      var r = s.areas[a][S.kind]; if (!r) return;
      var tr = el("tr"); tr.appendChild(el("td", a));
      tr.appendChild(el("td", pct(r.coverage_rate))); tr.appendChild(el("td", num(r.population)));
      var bar = el("span", null, "bar"); bar.style.width = Math.round((r.coverage_rate || 0) * 80) + "px";
      bar.style.background = covColour(r.coverage_rate);
      var td = el("td"); td.appendChild(bar); tr.appendChild(td); t.appendChild(tr);
    });

    var g = $("targets"); g.textContent = "";
    var gh = el("tr"); [T("target"), T("value"), T("shortfall"), T("sites_needed")].forEach(function (x) { gh.appendChild(el("th", x)); });
    g.appendChild(gh);
    s.targets.forEach(function (x) {
      var tr = el("tr"); tr.appendChild(el("td", x.label));
      var ok = x.status === "met";
      var shown = x.measure === "facility_count" ? num(x.value) + " / " + num(x.threshold)
        : pct(x.value) + " / " + pct(x.threshold);
      tr.appendChild(el("td", (ok ? "✔ " : "✘ ") + T(x.status) + " " + shown, ok ? "met" : "notmet"));
      tr.appendChild(el("td", ok ? "–" : num(x.shortfall_population)));
      tr.appendChild(el("td", x.sites_needed === null ? "–" : x.sites_needed));
      g.appendChild(tr);
    });
  }

  function applyTexts() {
    document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
    document.querySelectorAll("[data-t]").forEach(function (e) { e.textContent = T(e.dataset.t); });
    $("scenario-name").placeholder = T("scenario_name");
    var sel = $("layer"); var keep = S.kind; sel.textContent = "";
    Object.keys(S.state.layers).forEach(function (k) {
      var o = el("option", label(k)); o.value = k; sel.appendChild(o);
    });
    sel.value = keep;
    namedOverlays();
  }

  // --------------------------------------------------------------------------- edits
  function refresh() {
    return Promise.all([
      api("GET", "/api/map?layer=" + S.kind),
      api("GET", "/api/facilities?layer=" + S.kind),
    ]).then(function (res) {
      drawLayer(res[0]); drawFacilities(res[1]); drawPanel();
    });
  }
  function edit(method, path, body) {
    return api(method, path, body).then(function (doc) {
      S.summary = doc.summary; S.state = doc.state; S.edits += 1;
      return refresh().then(function () { S.lastEdit = S.edits; return doc; });
    });
  }
  function setAdding(on) {
    S.adding = on; $("mode-add").classList.toggle("on", on);
    document.body.classList.toggle("adding", on);
  }
  map.on("click", function (e) {
    if (!S.adding) return;
    edit("POST", "/api/facilities", { layer: S.kind, lon: e.latlng.lng, lat: e.latlng.lat,
      name: T("new_site") });
  });
  $("mode-add").addEventListener("click", function () { setAdding(!S.adding); });
  $("undo").addEventListener("click", function () { edit("POST", "/api/undo"); });
  $("redo").addEventListener("click", function () { edit("POST", "/api/redo"); });
  $("layer").addEventListener("change", function () { S.kind = $("layer").value; refresh(); });
  $("apply").addEventListener("click", function () {
    var mins = $("minutes").value.split(/[,，\s]+/).filter(Boolean).map(Number);
    edit("PATCH", "/api/layers/" + S.kind, { speed_kmh: Number($("speed").value), minutes: mins });
  });
  $("lang").addEventListener("click", function () {
    lang = lang === "en" ? "zh" : "en"; applyTexts(); refresh(); drawSuggestion(); drawCompare();
    if (UP.info) relabelUploadForm();
  });

  // ---------------------------------------------------------------------- suggestions
  function poll(job, onStep) {
    return new Promise(function (resolve, reject) {
      (function tick() {
        api("GET", "/api/jobs/" + job.id).then(function (j) {
          onStep(j);
          if (j.state === "running") { setTimeout(tick, 300); }
          else if (j.state === "done") { resolve(j.result); }
          else { $("error").textContent = T("error") + ": " + j.error; reject(new Error(j.error)); }
        }, reject);
      })();
    });
  }
  function showSteps(box) {
    return function (j) {
      box.textContent = j.steps.map(function (s) { return T("steps_" + s); }).join(" → ") +
        (j.state === "running" ? " … " + j.elapsed_s + " s" : "");
      if (j.first && j.state === "running") {
        var f = j.first, num = function (v) { return v === null ? "—" : Math.round(v).toLocaleString(); };
        box.textContent += " · " + T("first_answer").replace("{objective}", num(f.objective))
          .replace("{bound}", num(f.bound));
      }
    };
  }
  $("suggest").addEventListener("click", function () {
    var model = $("model").value;
    var body = { layer: S.kind, model: model };
    if (model !== "lscp") body.p = Number($("p").value);
    api("POST", "/api/suggest", body).then(function (job) {
      return poll(job, showSteps($("progress")));
    }).then(function (res) { S.suggestion = res; drawSuggestion(); });
  });
  function drawSuggestion() {
    var ol = $("sites"); ol.textContent = ""; suggestLayer.clearLayers();
    var res = S.suggestion; if (!res) return;
    res.sites.forEach(function (site) {
      var li = el("li"); li.appendChild(el("span", site.name + (site.area ? " (" + site.area + ")" : "")));
      li.appendChild(el("span", " +" + num(site.added_population) + " " + T("added"), "hint"));
      var b = el("button", T("accept")); b.type = "button"; b.className = "accept";
      b.disabled = !!site.accepted;
      b.addEventListener("click", function () {
        edit("POST", "/api/facilities", { layer: res.layer, lon: site.lon, lat: site.lat, name: site.name })
          .then(function () { site.accepted = true; drawSuggestion(); });
      });
      li.appendChild(b); ol.appendChild(li);
      if (!site.accepted) {
        var mk = L.marker([site.lat, site.lon], { icon: L.divIcon({ className: "site-icon", iconSize: [14, 14] }),
          title: site.name, keyboard: false });
        mk.bindTooltip(String(site.rank)); suggestLayer.addLayer(mk);
      }
    });
  }

  // ------------------------------------------------------------------------ scenarios
  function listScenarios() {
    return api("GET", "/api/scenarios").then(function (doc) {
      var ul = $("scenario-list"); ul.textContent = "";
      ["cmp-a", "cmp-b"].forEach(function (id) {
        var sel = $(id), keep = sel.value; sel.textContent = "";
        var o = el("option", T("current")); o.value = ""; sel.appendChild(o);
        doc.scenarios.forEach(function (s) { var x = el("option", s.name); x.value = s.name; sel.appendChild(x); });
        sel.value = keep;
      });
      doc.scenarios.forEach(function (s) {
        var li = el("li"); li.appendChild(el("span", s.name)); li.appendChild(el("span", " " + s.saved, "hint"));
        var b = el("button", T("open")); b.type = "button"; b.className = "open";
        b.addEventListener("click", function () {
          edit("POST", "/api/scenarios/" + encodeURIComponent(s.name) + "/open");
        });
        li.appendChild(b); ul.appendChild(li);
      });
    });
  }
  $("save").addEventListener("click", function () {
    api("POST", "/api/scenarios", { name: $("scenario-name").value }).then(function (doc) {
      $("scenario-msg").textContent = T("saved") + ": " + doc.files.join(", ");
      return listScenarios();
    });
  });
  $("export").addEventListener("click", function () {
    api("POST", "/api/export", { name: $("scenario-name").value }).then(function (job) {
      return poll(job, function (j) { $("scenario-msg").textContent = j.steps.slice(-1)[0] || T("working"); });
    }).then(function (res) { $("scenario-msg").textContent = T("exported") + " " + res.folder; });
  });
  $("compare").addEventListener("click", function () {
    api("GET", "/api/compare?a=" + encodeURIComponent($("cmp-a").value) + "&b=" +
        encodeURIComponent($("cmp-b").value)).then(function (doc) { S.compare = doc; drawCompare(); });
  });
  function drawCompare() {
    var t = $("cmp-table"); t.textContent = ""; compareLayer.clearLayers();
    var c = S.compare; if (!c) return;
    var hr = el("tr");
    [T("layer"), c.a || T("current"), c.b || T("current"), T("gain"), T("lose")].forEach(function (x) { hr.appendChild(el("th", x)); });
    t.appendChild(hr);
    Object.keys(c.summary_a.layers).forEach(function (k) {
      var tr = el("tr"); tr.appendChild(el("td", label(k)));
      tr.appendChild(el("td", pct(c.summary_a.layers[k].coverage_rate)));
      tr.appendChild(el("td", pct((c.summary_b.layers[k] || {}).coverage_rate)));
      tr.appendChild(el("td", "+" + num(c.changes[k].gain_population), "met"));
      tr.appendChild(el("td", "−" + num(c.changes[k].lose_population), "notmet"));
      t.appendChild(tr);
    });
    var ch = c.changes[S.kind];
    [["gain", "#00c853"], ["lose", "#d50000"]].forEach(function (g) {
      ch[g[0]].forEach(function (p) {
        compareLayer.addLayer(L.circleMarker([p[1], p[0]], { renderer: canvas, radius: 6, color: g[1],
          weight: 2, fillOpacity: 0.1, interactive: false }));
      });
    });
  }

  // ------------------------------------------------------- a new study from uploaded files
  // The form is sent whole as multipart/form-data; the server stores each file under a
  // generated name and reads it with the command line's own readers and checks.
  var UP = { info: null, n: 0 };
  var TABLES = ".gpkg,.geojson,.csv,.xlsx,.parquet,.zip";
  function coordsSelect(name) {
    var sel = el("select"); sel.name = name;
    var own = el("option", T("upload_coords")); own.value = ""; sel.appendChild(own);
    UP.info.coords.forEach(function (c) { var o = el("option", c); o.value = c; sel.appendChild(o); });
    return sel;
  }
  function fileRow(slot, example) {
    var row = el("div", null, "up-row");
    var f = el("input"); f.type = "file"; f.name = slot; f.accept = TABLES; row.appendChild(f);
    var sheet = el("input"); sheet.type = "text"; sheet.name = slot + "_layer";
    sheet.placeholder = T("upload_sheet"); row.appendChild(sheet);
    row.appendChild(coordsSelect(slot + "_coords"));
    var cols = el("input"); cols.type = "text"; cols.name = slot + "_columns";
    cols.placeholder = T("upload_columns") + ": " + example; cols.title = cols.placeholder;
    row.appendChild(cols);
    return row;
  }
  function addLayerRow() {
    if (UP.n >= UP.info.limits.layers) return;
    UP.n += 1;
    var slot = "layer" + UP.n;
    var row = fileRow(slot, "name=名称,capacity=床位");
    var kind = el("select"); kind.name = slot + "_kind";
    UP.info.kinds.forEach(function (k, i) {
      var o = el("option", lang === "en" ? k.label_en : k.label_zh); o.value = k.kind;
      kind.appendChild(o);
      if (i === (UP.n - 1) % UP.info.kinds.length) kind.value = k.kind;
    });
    row.insertBefore(kind, row.firstChild);
    $("upload-layers").insertBefore(row, $("upload-add"));
  }
  function drawUploadForm() {
    document.querySelectorAll("#upload-form .up-file").forEach(function (fs) {
      var keep = fs.querySelector("legend"); fs.textContent = ""; fs.appendChild(keep);
      fs.appendChild(fileRow(fs.dataset.slot, fs.dataset.slot === "residents"
        ? "population=常住人口,elderly=60岁以上" : "name=街道名称"));
    });
    $("upload-layers").querySelectorAll(".up-row").forEach(function (r) { r.remove(); });
    UP.n = 0; addLayerRow();
    var lim = UP.info.limits;
    $("upload-limits").textContent = T("upload_limits").replace("{file}", lim.file_mb)
      .replace("{study}", lim.study_mb);
  }
  function relabelUploadForm() {  // the language switch keeps the chosen files
    document.querySelectorAll("#upload-form input[name$=_layer]").forEach(function (i) {
      i.placeholder = T("upload_sheet");
    });
    document.querySelectorAll("#upload-form input[name$=_columns]").forEach(function (i) {
      i.placeholder = T("upload_columns") + ": " + i.placeholder.split(": ").slice(1).join(": ");
      i.title = i.placeholder;
    });
    document.querySelectorAll("#upload-form select[name$=_coords] option[value='']").forEach(
      function (o) { o.textContent = T("upload_coords"); });
    document.querySelectorAll("#upload-form select[name$=_kind] option").forEach(function (o) {
      UP.info.kinds.forEach(function (k) {
        if (k.kind === o.value) o.textContent = lang === "en" ? k.label_en : k.label_zh;
      });
    });
    var lim = UP.info.limits;
    $("upload-limits").textContent = T("upload_limits").replace("{file}", lim.file_mb)
      .replace("{study}", lim.study_mb);
  }
  $("upload-add").addEventListener("click", addLayerRow);
  $("upload-form").addEventListener("submit", function (e) {
    e.preventDefault();
    var form = new FormData($("upload-form")), body = new FormData();
    form.forEach(function (v, k) {  // no empty file parts, no empty options
      if (typeof v === "string" ? v.trim() !== "" : v.name !== "") body.append(k, v);
    });
    var msg = $("upload-msg"); msg.textContent = T("upload_reading") + " …";
    $("upload-go").disabled = true;
    var sending = true; S.busy += 1; $("busy").hidden = false;
    function sent() { if (sending) { sending = false; S.busy -= 1; $("busy").hidden = S.busy === 0; } }
    fetch("/api/upload", { method: "POST", headers: { "X-Studio-Token": TOKEN }, body: body })
      .then(function (r) {
        return r.json().then(function (doc) {
          sent();
          if (!r.ok) throw new Error(doc.error || ("HTTP " + r.status));
          return doc;
        });
      })
      .then(function (job) {
        return poll(job, function (j) {
          msg.textContent = T("upload_reading") + ": " + (j.steps.slice(-1)[0] || "") + " … " +
            j.elapsed_s + " s";
        });
      })
      .then(function (res) {
        msg.textContent = T("upload_done") + ": " + res.title;
        S.uploaded = res;
        location.reload();
      })
      .catch(function (err) {
        sent(); $("upload-go").disabled = false;
        msg.textContent = T("error") + ": " + err.message;
        $("error").textContent = T("error") + ": " + err.message;
      });
  });
  function loadUploadForm() {
    return fetch("/api/upload", { headers: { "X-Studio-Token": TOKEN } }).then(function (r) {
      if (!r.ok) { $("upload-box").hidden = true; return; }
      return r.json().then(function (info) { UP.info = info; drawUploadForm(); });
    });
  }

  // ---------------------------------------------------------------------------- start
  Promise.all([api("GET", "/api/state"), api("GET", "/api/summary"), api("GET", "/api/base")])
    .then(function (res) {
      S.state = res[0]; S.summary = res[1]; S.base = res[2];
      S.kind = Object.keys(S.state.layers)[0];
      applyTexts(); drawBase(S.base);
      return refresh().then(listScenarios).then(loadUploadForm);
    }).then(function () { S.ready = true; });
})();
