// The study page. On load it reads the study, every trial with its curve (/web-api/.../curves), the
// analysis and the best configuration; then it follows the study's event stream from the cursor the
// curves came with, adding points and trials as they arrive. Panels re-render at most a few times a
// second however fast events come; the analysis and best configuration are re-read (debounced) when
// trials finish.
import {
  api, ApiError, canCallApi, chart, debounce, every, familyColors, fmtDuration, fmtNum, hideBanner,
  progressBar, setupTokenForm, showBanner, streamEvents,
} from "./common.js";
import {
  bestSoFarOption, curvesOption, familiesOption, importanceOption, parallelOption, transferOption,
} from "./study_charts.js";
import { renderBest, setupCopyButtons, TrialsTable } from "./study_panels.js";

const STUDY_ID = Number(document.body.dataset.studyId);
const BASE = `/api/v1/studies/${STUDY_ID}`;
const WEB = `/web-api/studies/${STUDY_ID}`;
const RENDER_MS = 300; // the longest a new point waits before it is drawn
const FINISHED = new Set(["completed", "failed", "cancelled"]);

const state = {
  study: null, // StudyPublic
  loadedAt: 0, // when `study` arrived (ms): the elapsed time of a running study grows from there
  metric: "val_loss",
  mode: "min",
  trials: new Map(), // id -> trial (TrialPublic fields, plus family, schedule, points: Map step -> value, finishedMs)
  analysis: null,
  scopeKey: null,
  stream: null, // AbortController of the live stream
};
const color = familyColors();
const charts = {};
let table = null;

// ---- trials ------------------------------------------------------------------------------------------

function upsertTrial(id, fields) {
  let trial = state.trials.get(id);
  if (!trial) {
    trial = { id, number: 0, status: "running", phase: "search", points: new Map(), config: null };
    state.trials.set(id, trial);
  }
  Object.assign(trial, fields);
  if (trial.config) {
    trial.family = trial.config.family;
    trial.schedule = trial.config.schedule;
  }
  trial.family ??= "?";
  trial.schedule ??= "?";
  if (fields.finished_at) trial.finishedMs = Date.parse(fields.finished_at);
  return trial;
}

function fromCurves(payload) {
  if (payload.mode !== state.mode) table.ascending = payload.mode !== "max"; // the table lists the best first
  state.metric = payload.metric;
  state.mode = payload.mode;
  for (const t of payload.trials) {
    const trial = upsertTrial(t.id, { ...t, points: state.trials.get(t.id)?.points ?? new Map() });
    for (const [step, value] of t.points) trial.points.set(step, value);
  }
  return payload.cursor;
}

function onEvent({ event, data }) {
  const d = data.data || {};
  const id = d.trial;
  switch (event) {
    case "trial_started":
      if (id) upsertTrial(id, { number: d.number, config: d.config, phase: d.phase, seed: d.seed, status: "running" });
      invalidate("curves", "table");
      refreshStudy();
      break;
    case "trial_result": {
      if (!id) break;
      const trial = state.trials.get(id) ?? upsertTrial(id, { number: d.number });
      const value = d.point?.[state.metric];
      if (typeof value === "number" && Number.isFinite(value)) trial.points.set(d.point.step, value);
      if (trial.family === "?") refreshCurves(); // a trial whose start we did not see: read it whole
      invalidate("curves");
      break;
    }
    case "trial_finished":
      if (id) {
        upsertTrial(id, {
          number: d.number, config: d.config ?? state.trials.get(id)?.config, status: d.status,
          value: d.value, final: d.final, steps: d.steps, finishedMs: data.time * 1000,
        });
      }
      invalidate("curves", "table", "bestSoFar", "families");
      refreshStudy();
      refreshAnalysis();
      refreshBest();
      break;
    case "best_changed":
      refreshStudy();
      refreshBest();
      break;
    case "finished":
      refreshStudy();
      refreshAnalysis();
      refreshBest();
      refreshCurves(); // final statuses and wall times of every trial
      break;
    default:
      refreshStudy();
  }
}

// ---- rendering ---------------------------------------------------------------------------------------

const dirty = new Set();
let renderTimer = null;

function invalidate(...panels) {
  panels.forEach((p) => dirty.add(p));
  renderTimer ??= setTimeout(flush, RENDER_MS);
}

function flush() {
  clearTimeout(renderTimer);
  renderTimer = null;
  const panels = [...dirty];
  dirty.clear();
  panels.forEach((p) => RENDER[p]());
}

const trialList = () => [...state.trials.values()].sort((a, b) => a.number - b.number);

const RENDER = {
  curves() {
    charts.curves.setOption(
      curvesOption(trialList(), {
        metric: state.metric, color, logScale: document.getElementById("log-scale").checked,
        bestId: state.study?.best?.trial_id, byId: (id) => state.trials.get(id), steps: state.study?.spec.task.steps,
      }),
      { replaceMerge: ["series"] },
    );
  },
  bestSoFar() {
    const startMs = state.study?.started_at ? Date.parse(state.study.started_at) : 0;
    charts.best.setOption(bestSoFarOption(trialList(), { startMs, mode: state.mode, metric: state.metric, color }), { replaceMerge: ["series"] });
  },
  families() {
    charts.families.setOption(familiesOption(trialList(), { mode: state.mode, metric: state.metric, color }), { replaceMerge: ["series"] });
  },
  table() {
    table.render(trialList());
    const done = trialList().filter((t) => FINISHED.has(t.status) || ["pruned", "diverged"].includes(t.status)).length;
    document.getElementById("trials-count").textContent = `${state.trials.size} trials, ${done} finished`;
  },
  analysis() {
    const select = document.getElementById("scope-select");
    const scopes = state.analysis?.scopes ?? [];
    if (!scopes.some((s) => s.key === state.scopeKey)) {
      // Default: the best family's own scope (all its hyperparameters) once it has an importance, else all trials.
      const best = scopes.find((s) => s.key.startsWith("family:"));
      state.scopeKey = (best?.importance.length ? best : scopes[0])?.key ?? null;
    }
    select.replaceChildren(...scopes.map((s) => new Option(`${s.label} (${s.n_trials})`, s.key, false, s.key === state.scopeKey)));
    const scope = scopes.find((s) => s.key === state.scopeKey);
    const note = document.getElementById("importance-note");
    note.hidden = !(scope?.note || !scope);
    note.textContent = scope?.note ?? "No completed trial yet.";
    charts.importance.setOption(importanceOption(scope), { replaceMerge: ["series", "yAxis"] });
    charts.parallel.setOption(
      parallelOption(scope, { mode: state.analysis?.mode ?? state.mode, objective: state.analysis?.objective ?? state.metric }),
      { replaceMerge: ["series", "parallelAxis"] },
    );
    const transfer = state.analysis?.transfer ?? [];
    document.getElementById("transfer-panel").hidden = transfer.length === 0;
    if (transfer.length) charts.transfer.setOption(transferOption(transfer, { color }), { replaceMerge: ["series"] });
  },
};

function renderHeader() {
  const s = state.study;
  document.title = `${s.name} · optforge`;
  document.getElementById("study-name").textContent = s.name;
  const badge = document.getElementById("study-status");
  badge.textContent = s.cancel_requested ? "cancelling" : s.status;
  badge.className = `badge status-${s.status}`;
  const p = s.progress;
  const running = p.trials_running ? ` · ${p.trials_running} running` : "";
  document.getElementById("study-progress").replaceChildren(
    progressBar(p.trials_finished, p.trials_total, "Trials done"),
    document.createTextNode(`trials done${running}`),
  );
  document.getElementById("study-best").textContent = s.best ? `${s.best.metric} ${fmtNum(s.best.value)} (${s.best.family})` : "–";
  document.getElementById("study-owner").textContent = s.owner ?? "anonymous (open mode)";
  const error = document.getElementById("study-error");
  error.hidden = !s.error;
  error.textContent = s.error ?? "";
  document.getElementById("cancel-button").hidden = FINISHED.has(s.status) || s.cancel_requested;
  document.getElementById("live-indicator").hidden = !state.stream || FINISHED.has(s.status);
  tick();
}

function tick() {
  const s = state.study;
  if (!s) return;
  const running = s.status === "running";
  const elapsed = s.elapsed_s === null ? null : s.elapsed_s + (running ? (Date.now() - state.loadedAt) / 1000 : 0);
  document.getElementById("study-elapsed").textContent = fmtDuration(elapsed);
  const { trials_finished: done, trials_total: total } = s.progress;
  // Finished trials so far took `elapsed` at the study's concurrency: the rest should take the same per trial.
  const eta = running && done > 0 && elapsed !== null ? (elapsed / done) * Math.max(0, total - done) : null;
  document.getElementById("study-eta").textContent = FINISHED.has(s.status) ? "done" : eta === null ? "–" : `~${fmtDuration(eta)}`;
}

// ---- loading -----------------------------------------------------------------------------------------

function report(err) {
  if (!(err instanceof ApiError && err.status === 401)) showBanner(`Could not load the study: ${err.message}`);
}

async function loadStudy() {
  state.study = await api(BASE);
  state.loadedAt = Date.now();
  renderHeader();
  invalidate("bestSoFar");
}

async function loadCurves() {
  const cursor = fromCurves(await api(`${WEB}/curves`));
  invalidate("curves", "table", "bestSoFar", "families");
  return cursor;
}

async function loadAnalysis() {
  state.analysis = await api(`${WEB}/analysis`);
  invalidate("analysis");
}

async function loadBest() {
  renderBest(await api(`${WEB}/best`));
}

const refreshStudy = debounce(() => loadStudy().catch(report), 500);
const refreshCurves = debounce(() => loadCurves().catch(report), 1000);
const refreshAnalysis = debounce(() => loadAnalysis().catch(report), 3000);
const refreshBest = debounce(() => loadBest().catch(report), 1500);

function follow(cursor) {
  state.stream?.abort();
  state.stream = new AbortController();
  document.getElementById("live-indicator").hidden = false;
  streamEvents(`${BASE}/events`, { after: cursor, onEvent, signal: state.stream.signal })
    .catch(report)
    .finally(() => {
      document.getElementById("live-indicator").hidden = true;
    });
}

async function start() {
  if (!canCallApi()) return;
  try {
    await loadStudy();
    hideBanner();
    const cursor = await loadCurves();
    if (!FINISHED.has(state.study.status)) follow(cursor);
    await Promise.all([loadAnalysis(), loadBest()]);
    flush();
    document.body.dataset.loaded = "true"; // everything read and drawn once; from here on only the stream adds
  } catch (err) {
    report(err);
  }
}

async function cancel() {
  if (!window.confirm(`Cancel study "${state.study.name}"? Its running trials stop within seconds.`)) return;
  const button = document.getElementById("cancel-button");
  button.disabled = true;
  try {
    state.study = await api(`${BASE}/cancel`, { method: "POST" });
    state.loadedAt = Date.now();
    renderHeader();
  } catch (err) {
    showBanner(`Could not cancel: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

charts.curves = chart("chart-curves");
charts.best = chart("chart-best");
charts.families = chart("chart-families");
charts.importance = chart("chart-importance");
charts.parallel = chart("chart-parallel");
charts.transfer = chart("chart-transfer");
table = new TrialsTable(document.getElementById("trials-table"), { mode: state.mode });
document.getElementById("log-scale").addEventListener("change", () => RENDER.curves());
document.getElementById("scope-select").addEventListener("change", (e) => {
  state.scopeKey = e.target.value;
  RENDER.analysis();
});
document.getElementById("cancel-button").addEventListener("click", cancel);
setupCopyButtons();
setupTokenForm(start);
every(1000, tick);
// A safety net under the stream: while the study runs, re-read its summary now and then.
every(10000, () => state.study && !FINISHED.has(state.study.status) && refreshStudy());
start();
