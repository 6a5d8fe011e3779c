// The studies list: polls GET /api/v1/studies every few seconds (there is no stream across studies; a
// poll of unchanged studies costs the server one cached summary each) and ticks elapsed times locally.
import {
  api, ApiError, canCallApi, el, every, fmtDuration, fmtNum, hideBanner, progressBar, setupTokenForm, showBanner,
  statusBadge,
} from "./common.js";

const POLL_MS = 3000;
const PAGE_SIZE = 200;
const ROOT = document.body.dataset.root || "";
const tbody = document.querySelector("#studies-table tbody");
const filter = document.getElementById("status-filter");
let loadedAt = 0; // when the last list arrived (ms): running studies' elapsed time grows from there
let studies = [];

async function load() {
  const status = filter.value ? `&status=${encodeURIComponent(filter.value)}` : "";
  const page = await api(`/api/v1/studies?limit=${PAGE_SIZE}${status}`);
  studies = page.data;
  loadedAt = Date.now();
  render();
  document.getElementById("studies-empty").hidden = page.count > 0;
  const more = document.getElementById("studies-more");
  more.hidden = page.count <= studies.length;
  more.textContent = `Showing the newest ${studies.length} of ${page.count} studies.`;
  document.getElementById("list-updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

function elapsed(study) {
  if (study.elapsed_s === null) return null;
  return study.status === "running" ? study.elapsed_s + (Date.now() - loadedAt) / 1000 : study.elapsed_s;
}

function row(study) {
  const p = study.progress;
  const best = study.best;
  return el(
    "tr",
    { "data-study-id": study.id },
    el("td", { "data-label": "Name" }, el("a", { href: `${ROOT}/studies/${study.id}` }, study.name),
      el("span", { class: "muted id" }, ` #${study.id}`)),
    el("td", { "data-label": "Status" }, statusBadge(study.status)),
    el("td", { "data-label": "Progress" }, progressBar(p.trials_finished, p.trials_total, `${study.name}: trials done`)),
    el("td", { "data-label": "Best", class: "num" }, best ? `${best.metric} ${fmtNum(best.value)}` : "–"),
    el("td", { "data-label": "Family" }, best ? best.family : "–"),
    el("td", { "data-label": "Elapsed", class: "num elapsed" }, fmtDuration(elapsed(study))),
    el("td", { "data-label": "Owner" }, study.owner ?? "–"),
  );
}

function render() {
  tbody.replaceChildren(...studies.map(row));
}

function tick() {
  tbody.querySelectorAll("tr").forEach((tr, i) => {
    const study = studies[i];
    if (study && study.status === "running") tr.querySelector(".elapsed").textContent = fmtDuration(elapsed(study));
  });
}

function reload() {
  if (!canCallApi()) return; // the token prompt stays up
  load().then(hideBanner, (err) => {
    if (!(err instanceof ApiError && err.status === 401)) showBanner(`Could not load the studies: ${err.message}`);
  });
}

setupTokenForm(reload);
filter.addEventListener("change", reload);
reload();
every(POLL_MS, reload);
every(1000, tick);
