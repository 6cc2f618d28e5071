// The roadmap editor: reorder, add, remove and change steps; save the whole list at once.
"use strict";
(function () {
  const form = document.getElementById("editor");
  if (!form) return;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const list = document.getElementById("steps");
  const template = document.getElementById("step-template");
  const errorBox = document.getElementById("editor-error");
  const steps = JSON.parse(document.getElementById("roadmap-data").textContent);

  function renumber() {
    list.querySelectorAll(".step-edit").forEach(function (li, i) {
      li.querySelector(".num").textContent = "Step " + (i + 1);
    });
  }

  function add(step) {
    const li = template.content.firstElementChild.cloneNode(true);
    li.querySelector(".s-title").value = step.title || "";
    li.querySelector(".s-description").value = step.description || "";
    li.querySelector(".s-hours").value = step.hours || "1";
    li.dataset.resources = JSON.stringify(step.resources || []);
    li.querySelector(".up").addEventListener("click", function () {
      if (li.previousElementSibling) list.insertBefore(li, li.previousElementSibling);
      renumber();
    });
    li.querySelector(".down").addEventListener("click", function () {
      if (li.nextElementSibling) list.insertBefore(li.nextElementSibling, li);
      renumber();
    });
    li.querySelector(".remove").addEventListener("click", function () { li.remove(); renumber(); });
    list.appendChild(li);
    renumber();
  }

  steps.forEach(add);
  document.getElementById("add-step").addEventListener("click", function () {
    add({ title: "", description: "", hours: "1" });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    errorBox.hidden = true;
    const body = {
      title: document.getElementById("title").value,
      steps: Array.from(list.querySelectorAll(".step-edit")).map(function (li) {
        return {
          title: li.querySelector(".s-title").value,
          description: li.querySelector(".s-description").value,
          // Hours travel as the text typed: exact, no float rounding on the way.
          hours: li.querySelector(".s-hours").value.trim().replace(",", "."),
          resources: JSON.parse(li.dataset.resources),
        };
      }),
    };
    fetch(form.dataset.save, {
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body),
    }).then(function (r) {
      if (r.ok) { window.location.href = form.dataset.view; return; }
      return r.json().then(function (problem) {
        errorBox.textContent = problem.detail || problem.title || ("HTTP " + r.status);
        errorBox.hidden = false;
      });
    }).catch(function (err) { errorBox.textContent = String(err); errorBox.hidden = false; });
  });
})();
