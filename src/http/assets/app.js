// chanmon status page: refreshes the live part of the page in place (no full reload), keeping
// which groups are open. Without JavaScript a <noscript> meta refresh reloads the page instead.
"use strict";
(function () {
  const live = document.getElementById("live");
  if (!live) return;
  const secs = Math.max(5, parseInt(live.dataset.refresh || "30", 10));
  async function refresh() {
    try {
      const res = await fetch(window.location.pathname, { cache: "no-cache", credentials: "same-origin" });
      if (!res.ok) return;
      const doc = new DOMParser().parseFromString(await res.text(), "text/html");
      const next = doc.getElementById("live");
      if (!next) return;
      const closed = new Set();
      live.querySelectorAll("details[id]").forEach(function (d) { if (!d.open) closed.add(d.id); });
      live.replaceChildren(...Array.from(next.childNodes).map(function (n) { return document.importNode(n, true); }));
      live.querySelectorAll("details[id]").forEach(function (d) { if (closed.has(d.id)) d.open = false; });
      document.documentElement.dataset.refreshed = String(Date.now());
    } catch (e) {
      // Offline for a moment: try again at the next tick.
    }
  }
  window.setInterval(refresh, secs * 1000);
})();
