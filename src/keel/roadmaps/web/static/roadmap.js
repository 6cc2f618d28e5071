// The roadmap page: follow generation live (SSE, falling back to polling), mark steps.
"use strict";
(function () {
  const root = document.getElementById("roadmap");
  if (!root) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;

  function showProgress(view) {
    const bar = document.getElementById("gen-bar");
    const stage = document.getElementById("gen-stage");
    if (bar) bar.value = view.progress;
    if (stage) stage.textContent = view.stage + " (" + view.progress + "%)";
    if (view.status !== "generating") setTimeout(function () { window.location.reload(); }, 300);
  }

  function poll() {
    fetch(root.dataset.statusUrl, { headers: { Accept: "application/json" } })
      .then(function (r) {
        const wait = Number(r.headers.get("Retry-After") || "2");
        return r.json().then(function (view) {
          showProgress(view);
          if (view.status === "generating") setTimeout(poll, wait * 1000);
        });
      })
      .catch(function () { setTimeout(poll, 5000); });
  }

  if (root.dataset.status === "generating") {
    if (window.EventSource) {
      let failures = 0;
      const source = new EventSource(root.dataset.events);
      const onEvent = function (e) { failures = 0; showProgress(JSON.parse(e.data)); };
      ["progress", "ready", "failed"].forEach(function (k) { source.addEventListener(k, onEvent); });
      source.onerror = function () {
        failures += 1;
        if (failures >= 3) { source.close(); poll(); }
      };
    } else {
      poll();
    }
  }

  const done = document.getElementById("done-count");
  const percent = document.getElementById("percent");
  const doneBar = document.getElementById("done-bar");
  root.querySelectorAll(".step .mark").forEach(function (button) {
    button.addEventListener("click", function () {
      const step = button.closest(".step");
      const status = button.dataset.status;
      button.disabled = true;
      fetch(root.dataset.progressBase + step.dataset.step + "/progress", {
        method: "PUT",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify({ status: status }),
      }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        step.classList.remove("done", "learning", "skip");
        step.classList.add(status);
        step.querySelectorAll(".mark").forEach(function (b) { b.classList.toggle("on", b === button); });
        const steps = root.querySelectorAll(".step");
        const doneSteps = root.querySelectorAll(".step.done").length;
        const skipped = root.querySelectorAll(".step.skip").length;
        const counted = steps.length - skipped;
        const pct = counted <= 0 ? 100 : Math.round(100 * doneSteps / counted);
        if (done) done.textContent = String(doneSteps);
        if (percent) percent.textContent = String(pct);
        if (doneBar) doneBar.value = pct;
      }).catch(function (err) {
        step.setAttribute("data-error", String(err));
      }).finally(function () { button.disabled = false; });
    });
  });
})();
