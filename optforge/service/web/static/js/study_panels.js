// The study page's non-chart panels: the sortable trials table and the best configuration with copy buttons.
import { el, fmtDuration, fmtNum, statusBadge } from "./common.js";

const COLUMNS = [
  { key: "number", label: "#", num: true, get: (t) => t.number },
  { key: "family", label: "Family", get: (t) => t.family },
  { key: "schedule", label: "Schedule", get: (t) => t.schedule },
  { key: "status", label: "Status", get: (t) => t.status, cell: (t) => statusBadge(t.status) },
  { key: "phase", label: "Phase", get: (t) => (t.width ? `${t.phase} (w ${t.width})` : t.phase) },
  { key: "final", label: "Final", num: true, get: (t) => t.final, fmt: fmtNum },
  { key: "best", label: "Best", num: true, get: (t) => t.best, fmt: fmtNum },
  { key: "lr", label: "LR", num: true, get: (t) => t.config?.hparams?.lr, fmt: (v) => fmtNum(v, 3) },
  { key: "steps", label: "Steps", num: true, get: (t) => t.steps },
  { key: "wall", label: "Time", num: true, get: (t) => t.wall_time, fmt: fmtDuration },
  { key: "seed", label: "Seed", num: true, get: (t) => t.seed },
];

/** A table whose column headings are buttons that sort it (aria-sort says how it is sorted). */
export class TrialsTable {
  constructor(table, { mode }) {
    this.table = table;
    this.sortKey = "final";
    this.ascending = mode !== "max"; // best first
    this.rows = [];
    const head = table.querySelector("thead tr");
    head.replaceChildren(
      ...COLUMNS.map((c) =>
        el("th", { scope: "col", "data-key": c.key, class: c.num ? "num" : null },
          el("button", { type: "button", class: "sort", onclick: () => this.sortBy(c.key) },
            c.label, el("span", { class: "arrow", "aria-hidden": "true" }))),
      ),
    );
  }

  sortBy(key) {
    this.ascending = key === this.sortKey ? !this.ascending : true;
    this.sortKey = key;
    this.render(this.rows);
  }

  render(trials) {
    this.rows = trials;
    const column = COLUMNS.find((c) => c.key === this.sortKey);
    const missing = (v) => v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v));
    const sorted = [...trials].sort((a, b) => {
      const x = column.get(a);
      const y = column.get(b);
      if (missing(x) || missing(y)) return missing(x) - missing(y); // blanks last either way
      const order = x < y ? -1 : x > y ? 1 : 0;
      return this.ascending ? order : -order;
    });
    for (const th of this.table.querySelectorAll("thead th")) {
      const sorted = th.dataset.key === this.sortKey;
      th.setAttribute("aria-sort", sorted ? (this.ascending ? "ascending" : "descending") : "none");
      th.querySelector(".arrow").textContent = sorted ? (this.ascending ? " ▲" : " ▼") : ""; // aria-sort says it to screen readers
    }
    this.table.querySelector("tbody").replaceChildren(
      ...sorted.map((t) =>
        el("tr", { "data-trial-id": t.id },
          ...COLUMNS.map((c) => {
            const value = c.get(t);
            const content = c.cell ? c.cell(t) : c.fmt ? c.fmt(value) : (value ?? "–");
            return el("td", { class: c.num ? "num" : null }, content);
          })),
      ),
    );
  }
}

export function renderBest(best) {
  const summary = document.getElementById("best-summary");
  const yaml = document.getElementById("best-yaml");
  const snippet = document.getElementById("best-snippet");
  if (!best) {
    summary.textContent = "No completed trial yet.";
    yaml.textContent = "";
    snippet.textContent = "";
    return;
  }
  const spread = best.std !== null && best.std !== undefined ? ` ± ${fmtNum(best.std)}` : "";
  const where = best.source === "final" ? `final, over ${best.n} seed(s)` : "best trial so far; the study has not finished";
  summary.textContent = `${best.family} + ${best.schedule}: ${best.metric} ${fmtNum(best.value)}${spread} (${where})`;
  yaml.textContent = best.yaml;
  snippet.textContent = best.snippet;
}

/** Copy buttons: data-copy names the element whose text they copy. */
export function setupCopyButtons() {
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const text = document.getElementById(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        // No clipboard access (a plain-http page on another host): select the text for Ctrl+C instead.
        const range = document.createRange();
        range.selectNodeContents(document.getElementById(button.dataset.copy));
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        button.textContent = "Selected: press Ctrl+C";
      }
      setTimeout(() => (button.textContent = "Copy"), 2000);
    });
  }
}
