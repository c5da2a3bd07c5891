// worq dashboard: live overview, chart, and actions on failed tasks.
// Only text is ever set from data (textContent), never HTML.
"use strict";

const REFRESH_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

function csrf() {
  return document.querySelector('meta[name="csrf-token"]').content;
}

function root() {
  // where the app is mounted ("" at the top of its own server)
  return document.querySelector('meta[name="root"]').content;
}

function percent(rate) {
  return rate === null ? "—" : (rate * 100).toFixed(1) + " %";
}

function seconds(value) {
  return value === null ? "—" : value + " s";
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = String(text);
  row.appendChild(td);
}

function drawChart(svg, chart) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const highest = Math.max(1, ...chart.map((m) => m.succeeded + m.failed));
  const width = 600 / Math.max(chart.length, 1);
  chart.forEach((m, i) => {
    const ok = (m.succeeded / highest) * 78;
    const bad = (m.failed / highest) * 78;
    for (const [cls, height, y] of [["ok", ok, 80 - ok], ["bad", bad, 80 - ok - bad]]) {
      if (height <= 0) continue;
      const bar = document.createElementNS(SVG, "rect");
      bar.setAttribute("class", cls);
      bar.setAttribute("x", String(i * width));
      bar.setAttribute("y", String(y));
      bar.setAttribute("width", String(Math.max(width - 1, 1)));
      bar.setAttribute("height", String(height));
      const title = document.createElementNS(SVG, "title");
      title.textContent = new Date(m.minute * 1000).toISOString().slice(11, 16) +
        " UTC: " + m.succeeded + " succeeded, " + m.failed + " failed";
      bar.appendChild(title);
      svg.appendChild(bar);
    }
  });
}

function showQueue(article, queue) {
  for (const [state, count] of Object.entries(queue.counts)) {
    const dd = article.querySelector('[data-count="' + state + '"]');
    if (dd) dd.textContent = String(count);
  }
  article.querySelector('[data-field="per_minute"]').textContent = String(queue.per_minute);
  article.querySelector('[data-field="failure_rate"]').textContent = percent(queue.failure_rate);
  article.querySelector('[data-field="p50_s"]').textContent = seconds(queue.p50_s);
  article.querySelector('[data-field="p95_s"]').textContent = seconds(queue.p95_s);
  drawChart(article.querySelector("[data-chart]"), queue.chart);
  const body = article.querySelector("[data-pools]");
  while (body.firstChild) body.removeChild(body.firstChild);
  if (queue.pools.length === 0) {
    const row = document.createElement("tr");
    row.className = "none";
    const td = document.createElement("td");
    td.colSpan = 7;
    td.textContent = "no live pool";
    row.appendChild(td);
    body.appendChild(row);
  }
  for (const pool of queue.pools) {
    const row = document.createElement("tr");
    for (const value of [pool.id, pool.kind, pool.host, pool.pid, pool.workers,
                         pool.tasks_done, pool.running.length]) {
      cell(row, value);
    }
    body.appendChild(row);
  }
}

async function refresh(section) {
  try {
    const response = await fetch(section.dataset.live, {headers: {Accept: "application/json"}});
    if (response.ok) {
      const data = await response.json();
      const known = new Set();
      for (const queue of data.queues) {
        known.add(queue.name);
        const article = section.querySelector('[data-queue="' + CSS.escape(queue.name) + '"]');
        if (article) showQueue(article, queue);
      }
      if ([...section.querySelectorAll("[data-queue]")].some((a) => !known.has(a.dataset.queue)) ||
          known.size !== section.querySelectorAll("[data-queue]").length) {
        window.location.reload();  // a queue came or went: render the page again
        return;
      }
      section.dataset.updated = String(data.read_at);
    }
  } finally {
    setTimeout(() => refresh(section), REFRESH_MS);
  }
}

async function act(box, action, scope, id) {
  const queue = box.dataset.queue;
  let body;
  if (scope === "one") {
    body = {queue: queue, ids: [id]};
  } else if (scope === "selected") {
    const ids = [...box.querySelectorAll("[data-select]:checked")].map((c) => c.value);
    if (ids.length === 0) return;
    if (!window.confirm(action + " " + ids.length + " selected task(s)?")) return;
    body = {queue: queue, ids: ids};
  } else {
    if (!window.confirm(action + " every failed task matching the filter?")) return;
    body = {queue: queue, match: {task: box.dataset.task, error: box.dataset.error}};
  }
  const response = await fetch(root() + "/api/failed/" + action, {
    method: "POST",
    headers: {"Content-Type": "application/json", "X-Worq-Csrf": csrf()},
    body: JSON.stringify(body),
  });
  const result = await response.json();
  const out = box.querySelector("#result");
  if (!response.ok) {
    out.textContent = result.error;
    return;
  }
  out.textContent = action === "retry"
    ? "retried " + result.retried + " of " + Object.keys(result.done).length
    : "discarded " + result.discarded.length;
  const gone = action === "retry"
    ? Object.entries(result.done).filter(([, r]) => r === "retried").map(([i]) => i)
    : result.discarded;
  for (const taskId of gone) {
    const row = box.querySelector('tr[data-id="' + CSS.escape(taskId) + '"]');
    if (row) row.remove();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.querySelector("[data-live]");
  if (section) {
    fetch(section.dataset.live).then((r) => r.json()).then((data) => {
      for (const queue of data.queues) {
        const article = section.querySelector('[data-queue="' + CSS.escape(queue.name) + '"]');
        if (article) drawChart(article.querySelector("[data-chart]"), queue.chart);
      }
    });
    setTimeout(() => refresh(section), REFRESH_MS);
  }
  const box = document.querySelector("#failures");
  if (box) {
    box.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-act]");
      if (button) act(box, button.dataset.act, button.dataset.scope, button.dataset.id);
    });
    const all = box.querySelector("[data-select-all]");
    all.addEventListener("change", () => {
      for (const c of box.querySelectorAll("[data-select]")) c.checked = all.checked;
    });
  }
});
