// Caption page. Caption text is whatever was said: it is only ever set with textContent.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const token = params.get("token");
  const obs = params.get("transparent") === "1" || params.get("obs") === "1";
  const root = document.documentElement;
  const box = document.getElementById("captions");
  const state = document.getElementById("state");
  const follow = document.getElementById("follow");
  const partials = new Map();   // source -> element of its live partial
  const finals = new Map();     // final id -> its element (a translation goes under it)
  const sources = new Set();
  let style = {};
  let following = true;
  let clearTimer = null;

  function withToken(path) {
    return token ? path + (path.includes("?") ? "&" : "?") + "token=" + encodeURIComponent(token) : path;
  }

  function readPref(key, fallback) {
    try { const v = localStorage.getItem("captions." + key); return v === null ? fallback : v; }
    catch (e) { return fallback; }
  }
  function savePref(key, value) {
    try { localStorage.setItem("captions." + key, String(value)); } catch (e) { /* private mode */ }
  }

  function setSize(px) {
    const size = Math.max(14, Math.min(120, Math.round(px)));
    root.style.setProperty("--size", size + "px");
    return size;
  }

  function hexToRgba(hex, opacityPct) {
    const m = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
    if (!m) return null;
    const a = Math.max(0, Math.min(100, Number(opacityPct))) / 100;
    return "rgba(" + [1, 2, 3].map(i => parseInt(m[i], 16)).join(", ") + ", " + a + ")";
  }

  function applyStyle() {
    if (style.font_family) box.style.fontFamily = style.font_family;
    const base = Number(style.font_size) || 28;
    if (obs) {
      root.classList.add("obs");
      root.classList.add("fx-" + (style.text_effect || "outline"));
      setSize(base);
      if (/^#[0-9a-f]{6}$/i.test(style.text_color || "")) root.style.setProperty("--cap-fg", style.text_color);
      const bg = hexToRgba(style.background_color, style.background_opacity ?? 75);
      if (bg) root.style.setProperty("--cap-bg", bg);
      if (params.get("box") === "0") root.style.setProperty("--cap-bg", "transparent");
    } else {
      setSize(Number(readPref("size", base)));
      const theme = readPref("theme", matchMedia("(prefers-color-scheme: light)").matches ? "light" : "dark");
      root.classList.toggle("light", theme === "light");
    }
  }

  function atBottom() { return box.scrollHeight - box.scrollTop - box.clientHeight < 40; }
  function scrollDown() { if (following) box.scrollTop = box.scrollHeight; }

  function fill(el, ev) {
    el.replaceChildren();
    if (sources.size > 1 && style.show_source_labels !== false && ev.source) {
      const s = document.createElement("span"); s.className = "src"; s.textContent = ev.source; el.append(s);
    }
    if (ev.speaker) {
      const w = document.createElement("span"); w.className = "who"; w.textContent = String(ev.speaker); el.append(w);
    }
    el.append(document.createTextNode(String(ev.text || "")));
    const tr = ev.translation || (ev.translations && Object.values(ev.translations)[0]);
    if (tr) {
      const t = document.createElement("span"); t.className = "tr"; t.textContent = String(tr); el.append(t);
    }
  }

  function trim() {
    // OBS shows the last few lines like the overlay; the phone view keeps a long scroll-back.
    const keep = obs ? Math.max(1, Number(style.lines) || 2) : 2000;
    while (box.children.length > keep) box.firstElementChild.remove();
  }

  function scheduleClear() {
    if (!obs) return;
    const after = Number(style.clear_after_s) || 0;
    if (clearTimer) clearTimeout(clearTimer);
    if (after > 0) clearTimer = setTimeout(() => { box.replaceChildren(); partials.clear(); }, after * 1000);
  }

  function onEvent(ev) {
    if (!ev || typeof ev !== "object") return;
    const src = String(ev.source || "");
    if (ev.event === "partial" && style.stable_only) return;   // the overlay's "finals only"
    if (ev.event === "partial" || ev.event === "final") {
      if (src) sources.add(src);
      const live = partials.get(src);
      if (!ev.text && ev.event === "partial") { if (live) { live.remove(); partials.delete(src); } return; }
      if (ev.event === "partial") {
        const el = live || document.createElement("p");
        if (!live) {
          // Screen readers announce finals only, not every revision of the partial.
          el.setAttribute("aria-hidden", "true");
          box.append(el);
        }
        fill(el, ev);
        el.className = "line partial";
        partials.set(src, el);
      } else {
        partials.delete(src);
        const el = document.createElement("p");   // a new node, so it is announced once
        el.className = "line final";
        fill(el, ev);
        if (!String(ev.text || "").trim()) { if (live) live.remove(); }
        else if (live) live.replaceWith(el);
        else box.append(el);
        if (ev.id != null && String(ev.text || "").trim()) {
          finals.set(ev.id, el);
          if (finals.size > 2000) finals.delete(finals.keys().next().value);
        }
      }
      trim();
      scrollDown();
      scheduleClear();
    } else if (ev.event === "translation") {
      // Late and out of order too: it goes under its own caption, as text only.
      const el = finals.get(ev.id);
      if (!el || !el.isConnected || !String(ev.text || "").trim()) return;
      let t = el.querySelector(".tr");
      if (!t) { t = document.createElement("span"); t.className = "tr"; el.append(t); }
      if (ev.language) t.lang = String(ev.language).slice(0, 35);
      t.textContent = String(ev.text);
      scrollDown();
      scheduleClear();
    } else if (ev.event === "session_ended") {
      const el = partials.get(src); if (el) { el.remove(); partials.delete(src); }
    } else if (ev.event === "reconnecting") {
      setState("Reconnecting to the recognizer…", false);
    } else if (ev.event === "session_started") {
      setState("Live", true);
    }
  }

  function setState(text, live) { state.textContent = text; state.classList.toggle("live", !!live); }

  function connect() {
    const source = new EventSource(withToken("/events"));
    source.onopen = () => setState("Live", true);
    source.onmessage = (m) => { try { onEvent(JSON.parse(m.data)); } catch (e) { /* skip a bad record */ } };
    source.onerror = () => {
      setState("Reconnecting…", false);
      if (source.readyState !== EventSource.CLOSED) return;   // the browser retries by itself
      // Refused: find out why. A renewed link never comes back; a full server or an outage may.
      fetch(withToken("/config.json"), { cache: "no-store" })
        .then(r => {
          if (r.status === 401 || r.status === 403) {
            setState("This link is no longer valid. Ask for the new link or scan the new QR code.", false);
          } else {
            setTimeout(connect, r.status === 503 ? 10000 : 3000);
          }
        })
        .catch(() => setTimeout(connect, 3000));
    };
  }

  function keepAwake() {
    if (!("wakeLock" in navigator)) return;
    const ask = () => navigator.wakeLock.request("screen").catch(() => {});
    ask();
    document.addEventListener("visibilitychange", () => { if (document.visibilityState === "visible") ask(); });
  }

  function wire() {
    document.getElementById("smaller").addEventListener("click", () => {
      savePref("size", setSize(parseFloat(getComputedStyle(root).getPropertyValue("--size")) / 1.15));
    });
    document.getElementById("larger").addEventListener("click", () => {
      savePref("size", setSize(parseFloat(getComputedStyle(root).getPropertyValue("--size")) * 1.15));
    });
    document.getElementById("theme").addEventListener("click", () => {
      const light = !root.classList.contains("light");
      root.classList.toggle("light", light);
      savePref("theme", light ? "light" : "dark");
    });
    box.addEventListener("scroll", () => { following = atBottom(); follow.hidden = following; });
    follow.addEventListener("click", () => { following = true; follow.hidden = true; scrollDown(); });
  }

  function start() {
    wire();
    applyStyle();
    if (!obs) keepAwake();
    fetch(withToken("/config.json"), { cache: "no-store" })
      .then(r => (r.ok ? r.json() : {}))
      .then(cfg => { style = (cfg && cfg.style) || {}; applyStyle(); })
      .catch(() => {})
      .finally(connect);
  }

  start();
})();
