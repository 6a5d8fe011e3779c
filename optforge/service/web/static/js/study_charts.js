// ECharts options for the study page, built from the page's state. Pure functions: no DOM, no fetches.
import { BASE_OPTION, fmtDuration, fmtNum } from "./common.js";

const finite = (v) => typeof v === "number" && Number.isFinite(v);

// How each trial status is drawn on the learning curves; `mark` is a symbol at the curve's last point.
const STATUS_STYLE = {
  completed: { type: "solid", opacity: 0.9 },
  running: { type: "solid", opacity: 0.9 },
  queued: { type: "solid", opacity: 0.9 },
  pruned: { type: "dashed", opacity: 0.65, mark: "rect" },
  diverged: { type: "dotted", opacity: 0.8, mark: "triangle" },
  failed: { type: "dotted", opacity: 0.3 },
  cancelled: { type: "dotted", opacity: 0.3 },
};

const better = (mode) => (a, b) => (mode === "max" ? a > b : a < b);

/** The trial's curve as [step, value] pairs in step order. */
export function curveData(trial) {
  return [...trial.points].sort((a, b) => a[0] - b[0]);
}

export function trialLabel(t) {
  return `#${t.number} ${t.family} · ${t.schedule} · ${t.status}` + (finite(t.final) ? ` · ${fmtNum(t.final)}` : "");
}

export function curvesOption(trials, { metric, color, logScale, bestId, byId, steps }) {
  const drawn = trials.filter((t) => t.points.size > 0);
  // Diverged curves climb by orders of magnitude; on a linear axis the others would flatten to a line,
  // so the axis stops at the highest point of the other trials and diverged ones leave the chart.
  let yMax;
  if (!logScale && drawn.some((t) => t.status === "diverged")) {
    const calm = drawn.filter((t) => t.status !== "diverged").flatMap((t) => [...t.points.values()]);
    if (calm.length) yMax = Math.max(...calm) * 1.05;
  }
  const series = drawn.map((t) => {
    const style = STATUS_STYLE[t.status] || STATUS_STYLE.running;
    const data = curveData(t);
    const isBest = t.id === bestId;
    return {
      type: "line",
      id: `trial-${t.id}`,
      name: t.family,
      data,
      color: color(t.family),
      showSymbol: data.length === 1,
      symbolSize: 5,
      triggerLineEvent: true,
      lineStyle: { type: style.type, opacity: style.opacity, width: isBest ? 3 : 1.4 },
      emphasis: { focus: "series", lineStyle: { width: 3 } },
      z: isBest ? 5 : 2,
      markPoint: style.mark
        ? { symbol: style.mark, symbolSize: 9, label: { show: false }, data: [{ coord: data[data.length - 1] }] }
        : undefined,
    };
  });
  return {
    ...BASE_OPTION,
    grid: { ...BASE_OPTION.grid, top: 40 },
    legend: { type: "scroll", top: 0 },
    tooltip: {
      trigger: "item",
      formatter: (p) => {
        const t = byId(Number(String(p.seriesId).replace("trial-", "")));
        const point = Array.isArray(p.value) ? `<br>step ${p.value[0]}: ${fmtNum(p.value[1])}` : "";
        return t ? escapeHtml(trialLabel(t)) + point : "";
      },
    },
    // The whole budget from the start, so a running study's curves visibly grow toward the right edge.
    xAxis: { type: "value", name: "step", nameLocation: "middle", nameGap: 26, min: 0, max: steps },
    yAxis: { type: logScale ? "log" : "value", name: metric, scale: true, max: yMax },
    dataZoom: [{ type: "inside", filterMode: "none" }],
    series,
  };
}

export function bestSoFarOption(trials, { startMs, mode, metric, color }) {
  const done = trials
    .filter((t) => t.status === "completed" && t.phase === "search" && finite(t.final) && t.finishedMs)
    .sort((a, b) => a.finishedMs - b.finishedMs);
  const isBetter = better(mode);
  const line = [];
  let best = null;
  for (const t of done) {
    if (best === null || isBetter(t.final, best)) best = t.final;
    line.push([Math.max(0, (t.finishedMs - startMs) / 1000), best]);
  }
  return {
    ...BASE_OPTION,
    tooltip: { trigger: "item" },
    xAxis: {
      type: "value", name: "time since start", nameLocation: "middle", nameGap: 26, min: 0,
      axisLabel: { formatter: (s) => fmtDuration(s) },
    },
    yAxis: { type: "value", name: metric, scale: true },
    series: [
      {
        type: "scatter", name: "each trial", symbolSize: 6,
        data: done.map((t) => ({
          value: [Math.max(0, (t.finishedMs - startMs) / 1000), t.final],
          itemStyle: { color: color(t.family), opacity: 0.6 },
        })),
        tooltip: { formatter: (p) => `${fmtDuration(p.value[0])}: ${fmtNum(p.value[1])}` },
      },
      {
        type: "line", name: "best so far", step: "end", data: line, color: "#222",
        symbolSize: 4, lineStyle: { width: 2 },
        tooltip: { formatter: (p) => `best after ${fmtDuration(p.value[0])}: ${fmtNum(p.value[1])}` },
      },
    ],
  };
}

// A fixed pseudo-random offset per trial, so strip-plot points do not jump between refreshes.
const jitter = (id) => (((id * 2654435761) % 1000) / 1000 - 0.5) * 0.5;

export function familiesOption(trials, { mode, metric, color }) {
  const groups = new Map();
  for (const t of trials) {
    if (t.status !== "completed" || t.phase !== "search" || !finite(t.final)) continue;
    if (!groups.has(t.family)) groups.set(t.family, []);
    groups.get(t.family).push(t);
  }
  const isBetter = better(mode);
  const bestOf = (list) => list.reduce((a, b) => (isBetter(b.final, a.final) ? b : a));
  const families = [...groups.keys()].sort((a, b) => (isBetter(bestOf(groups.get(a)).final, bestOf(groups.get(b)).final) ? -1 : 1));
  const index = new Map(families.map((f, i) => [f, i]));
  const tip = (t) => `${escapeHtml(trialLabel(t))}`;
  return {
    ...BASE_OPTION,
    grid: { left: 110, right: 20, top: 20, bottom: 44 },
    tooltip: { trigger: "item", formatter: (p) => tip(p.data.trial) },
    xAxis: { type: "value", name: metric, nameLocation: "middle", nameGap: 26, scale: true, axisLine: { onZero: false } },
    yAxis: {
      // A value axis (not a category one) so each family's points can spread around its row.
      type: "value", min: -0.5, max: Math.max(0.5, families.length - 0.5), inverse: true,
      axisLabel: { customValues: families.map((_, i) => i), formatter: (v) => families[v] ?? "" },
      axisTick: { customValues: families.map((_, i) => i) },
      splitLine: { show: false },
    },
    series: [
      {
        type: "scatter", name: "trials", symbolSize: 7,
        data: families.flatMap((f) => groups.get(f).map((t) => ({
          value: [t.final, index.get(f) + jitter(t.id)], trial: t,
          itemStyle: { color: color(f), opacity: 0.55 },
        }))),
      },
      {
        type: "scatter", name: "best per family", symbol: "diamond", symbolSize: 15, z: 5,
        data: families.map((f) => {
          const t = bestOf(groups.get(f));
          return { value: [t.final, index.get(f)], trial: t, itemStyle: { color: color(f), borderColor: "#222", borderWidth: 1 } };
        }),
      },
    ],
  };
}

/** A dimension's name for display: without the family prefix inside that family's scope, and with the
 * search's "one_minus_" (1 − x, searched on a log scale) written as such. */
export function dimensionLabel(name, scopeKey) {
  const family = scopeKey?.startsWith("family:") ? scopeKey.slice("family:".length) : null;
  const short = family && name.startsWith(`${family}.`) ? name.slice(family.length + 1) : name;
  return short.replace("one_minus_", "1−");
}

export function importanceOption(scope) {
  const items = [...(scope?.importance || [])].slice(0, 12).reverse(); // the most important at the top
  return {
    ...BASE_OPTION,
    grid: { left: 180, right: 30, top: 10, bottom: 36 },
    tooltip: { trigger: "item", formatter: (p) => `${escapeHtml(p.name)}: ${(p.value * 100).toFixed(1)}%` },
    xAxis: { type: "value", min: 0, max: 1, axisLabel: { formatter: (v) => `${Math.round(v * 100)}%` } },
    yAxis: { type: "category", data: items.map((i) => dimensionLabel(i.name, scope.key)), axisLabel: { width: 170, overflow: "truncate" } },
    series: [{ type: "bar", name: "importance", data: items.map((i) => i.importance), color: "#4e79a7", barMaxWidth: 22 }],
  };
}

export function parallelOption(scope, { mode, objective }) {
  const dims = scope?.dimensions || [];
  const rows = scope?.rows || [];
  const axes = dims.map((d, i) =>
    d.kind === "category"
      ? { dim: i, name: dimensionLabel(d.name, scope.key), type: "category", data: d.categories }
      : { dim: i, name: dimensionLabel(d.name, scope.key), type: d.log ? "log" : "value", scale: true },
  );
  const n = dims.length;
  axes.push({ dim: n, name: objective, type: "value", scale: true, inverse: mode === "min" });
  const values = rows.map((r) => r.objective);
  return {
    ...BASE_OPTION,
    parallel: { left: 80, right: 80, top: 40, bottom: 30, parallelAxisDefault: { nameTextStyle: { fontSize: 11 } } },
    parallelAxis: axes,
    visualMap: {
      type: "continuous", dimension: n, show: false,
      min: values.length ? Math.min(...values) : 0, max: values.length ? Math.max(...values) : 1,
      inRange: { color: mode === "min" ? ["#1a9850", "#fee08b", "#d73027"] : ["#d73027", "#fee08b", "#1a9850"] },
    },
    tooltip: { trigger: "item", formatter: (p) => `trial #${p.data.number}: ${fmtNum(p.data.value[n])}` },
    series: [{
      type: "parallel", name: "trials", lineStyle: { width: 1.5, opacity: 0.7 },
      data: rows.map((r) => ({ value: [...r.values.map((v, i) => (dims[i].kind === "category" ? String(v) : v)), r.objective], number: r.number })),
    }],
  };
}

export function transferOption(points, { color }) {
  const n = Math.max(1, ...points.map((p) => Math.max(p.proxy_rank, p.target_rank)));
  return {
    ...BASE_OPTION,
    tooltip: {
      trigger: "item",
      formatter: (p) => (p.data.point ? escapeHtml(`${p.data.point.family}: proxy #${p.data.point.proxy_rank} → target #${p.data.point.target_rank}`) : ""),
    },
    xAxis: { type: "value", name: "rank at proxy width", nameLocation: "middle", nameGap: 26, min: 0.5, max: n + 0.5, interval: 1 },
    yAxis: { type: "value", name: "rank at target", min: 0.5, max: n + 0.5, interval: 1, inverse: true },
    series: [
      { type: "line", name: "perfect transfer", data: [[0.5, 0.5], [n + 0.5, n + 0.5]], symbol: "none", lineStyle: { type: "dashed", color: "#999" }, tooltip: { show: false } },
      {
        type: "scatter", name: "configurations", symbolSize: 12,
        data: points.map((p) => ({ value: [p.proxy_rank, p.target_rank], point: p, itemStyle: { color: color(p.family) } })),
      },
    ],
  };
}

export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}
