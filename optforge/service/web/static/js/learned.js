// Learned optimizers: every meta-training run's meta-loss curve on one chart, then each run with its
// checkpoints. Re-read every few seconds while a run is still running.
import {
  api, ApiError, BASE_OPTION, canCallApi, chart, el, every, fmtNum, hideBanner, PALETTE, setupTokenForm,
  showBanner, statusBadge,
} from "./common.js";

const POLL_MS = 5000;
const meta = chart("chart-meta");
let view = null;

function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 ** 2).toFixed(1)} MB`;
}

function renderChart() {
  const logScale = document.getElementById("log-scale").checked;
  meta.setOption(
    {
      ...BASE_OPTION,
      grid: { ...BASE_OPTION.grid, top: 40 },
      legend: { type: "scroll", top: 0 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "value", name: "meta-step", nameLocation: "middle", nameGap: 26, min: 0 },
      yAxis: { type: logScale ? "log" : "value", name: "meta-loss", scale: true },
      dataZoom: [{ type: "inside", filterMode: "none" }],
      series: view.runs.map((run, i) => ({
        type: "line", id: `run-${run.id}`, name: `${run.name} #${run.id}`, data: run.curve,
        showSymbol: run.curve.length < 30, color: PALETTE[i % PALETTE.length],
      })),
    },
    { replaceMerge: ["series"] },
  );
}

function checkpointTable(checkpoints) {
  if (!checkpoints.length) return el("p", { class: "muted" }, "No checkpoint saved.");
  return el("div", { class: "table-wrap" },
    el("table", { class: "checkpoints" },
      el("thead", {}, el("tr", {}, ...["Checkpoint", "Step", "Metrics", "Size", "SHA-256", "Saved"].map((h) =>
        el("th", { scope: "col", class: h === "Step" || h === "Size" ? "num" : null }, h)))),
      el("tbody", {}, ...checkpoints.map((c) => el("tr", { "data-checkpoint-id": c.id },
        el("td", {}, `${c.name} #${c.id}`),
        el("td", { class: "num" }, c.step),
        el("td", {}, Object.entries(c.metrics).map(([k, v]) => `${k} ${typeof v === "number" ? fmtNum(v) : v}`).join(", ") || "–"),
        el("td", { class: "num" }, fmtBytes(c.size_bytes)),
        el("td", {}, el("code", { title: c.weights_sha256 }, c.weights_sha256.slice(0, 12))),
        el("td", {}, new Date(c.created_at).toLocaleString()),
      )))));
}

function renderRuns() {
  const cards = view.runs.map((run) => {
    const last = run.curve.length ? run.curve[run.curve.length - 1] : null;
    return el("article", { class: "run", "data-run-id": run.id },
      el("h3", {}, `${run.name} #${run.id} `, statusBadge(run.status)),
      el("p", { class: "muted" },
        `started ${new Date(run.created_at).toLocaleString()}`,
        last ? ` · meta-loss ${fmtNum(last[1])} at step ${last[0]}` : " · no meta-loss yet"),
      run.error ? el("p", { class: "error" }, run.error) : null,
      checkpointTable(run.checkpoints));
  });
  if (view.checkpoints.length) {
    cards.push(el("article", { class: "run" }, el("h3", {}, "Checkpoints of no listed run"), checkpointTable(view.checkpoints)));
  }
  document.getElementById("runs").replaceChildren(...cards);
  document.getElementById("learned-empty").hidden = view.runs.length > 0;
}

async function load() {
  if (!canCallApi()) return;
  try {
    view = await api("/web-api/learned");
    hideBanner();
    renderChart();
    renderRuns();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) showBanner(`Could not load the runs: ${err.message}`);
  }
}

document.getElementById("log-scale").addEventListener("change", () => view && renderChart());
setupTokenForm(load);
load();
every(POLL_MS, () => view?.runs.some((r) => r.status === "running" || r.status === "queued") && load());
