// Live counts of a check day: the summary is read again every few seconds (from the console,
// which asks eligibility with the user's token) and the tiles updated in place.
(function () {
  "use strict";
  const root = document.getElementById("live");
  if (!root) return;
  const scope = JSON.parse(root.dataset.scope || "{}");
  const params = new URLSearchParams(Object.assign({ month: root.dataset.month }, scope));
  function link(schoolId) {
    const a = document.createElement("a");
    a.href = "/schools/" + encodeURIComponent(schoolId) + "/months/" + encodeURIComponent(root.dataset.month);
    a.textContent = schoolId;
    return a;
  }

  function fill(id, rows, head, columns) {
    const body = document.getElementById(id);
    if (!body || !rows) return;
    body.textContent = "";
    for (const row of rows) {
      const tr = document.createElement("tr");
      for (const value of [...head(row), ...columns.map((c) => String(row[c]))]) {
        const td = document.createElement("td");
        if (value instanceof Node) td.appendChild(value); else td.textContent = value;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  async function refresh() {
    try {
      const response = await fetch("/authority/live.json?" + params.toString(), { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      const data = await response.json();
      for (const key of ["students", "checked", "passed", "failed", "pending", "not_checked"]) {
        const cell = document.getElementById("v-" + key);
        if (cell && String(data[key]) !== cell.textContent) cell.textContent = String(data[key]);
      }
      const columns = ["students", "checked", "passed", "failed", "pending", "not_checked"];
      fill("by-county", data.counties, (r) => [r.city, r.county], columns);
      fill("by-school", data.schools, (r) => [link(r.school_id), r.county], columns);
      document.getElementById("updated").textContent = data.updated_at;
    } catch (e) { /* try again at the next tick */ }
  }
  refresh();
  setInterval(refresh, Number(root.dataset.poll || 2000));
})();
