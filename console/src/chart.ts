import { formatTime, h } from "./dom.js";

const svgNs = "http://www.w3.org/2000/svg";

function svg(tag: string, attrs: Record<string, string | number>): SVGElement {
  const el = document.createElementNS(svgNs, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** One line of a chart. */
export interface Series {
  name: string;
  /** `[time ms, value]`, oldest first; `null` values leave a gap. */
  points: [number, number | null][];
}

const palette = ["#3b6fd8", "#d9730d", "#0f9d76", "#b34fc4", "#c9414b"];

/**
 * A small time-series chart (inline SVG, no library): one or more lines over the window, the
 * latest value large, the peak and the time span as labels.
 */
export function lineChart(title: string, series: Series[], unit: string, options: { id?: string } = {}): HTMLElement {
  const width = 320;
  const height = 90;
  const all = series.flatMap((s) => s.points);
  const values = all.map(([, v]) => v).filter((v): v is number => v !== null);
  const times = all.map(([t]) => t);
  const max = Math.max(1e-9, ...values);
  const t0 = Math.min(...times);
  const t1 = Math.max(...times);
  const x = (t: number) => (t1 === t0 ? width : ((t - t0) / (t1 - t0)) * width);
  const y = (v: number) => height - 4 - (v / max) * (height - 12);
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    class: "chart",
    preserveAspectRatio: "none",
    role: "img",
  });
  chart.appendChild(svg("line", { x1: 0, x2: width, y1: height - 4, y2: height - 4, class: "axis" }));
  series.forEach((s, i) => {
    const color = palette[i % palette.length] as string;
    let d = "";
    let pen = false;
    for (const [t, v] of s.points) {
      if (v === null) {
        pen = false;
        continue;
      }
      d += `${pen ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    }
    if (d !== "") {
      if (series.length === 1) {
        const first = s.points.find(([, v]) => v !== null);
        const last = [...s.points].reverse().find(([, v]) => v !== null);
        if (first && last) {
          chart.appendChild(
            svg("path", {
              d: `${d}L${x(last[0]).toFixed(1)},${height - 4}L${x(first[0]).toFixed(1)},${height - 4}Z`,
              fill: color,
              "fill-opacity": 0.12,
            }),
          );
        }
      }
      chart.appendChild(
        svg("path", { d, fill: "none", stroke: color, "stroke-width": 1.6, "vector-effect": "non-scaling-stroke" }),
      );
    }
  });
  const latest = (s: Series) => [...s.points].reverse().find(([, v]) => v !== null)?.[1];
  const fmt = (v: number | null | undefined) =>
    v === null || v === undefined
      ? "-"
      : Number.isInteger(v) || v >= 100
        ? v.toFixed(0)
        : v >= 10
          ? v.toFixed(1)
          : v.toFixed(2);
  return h(
    "figure",
    { class: "chart-card", id: options.id },
    h(
      "figcaption",
      null,
      h("span", { class: "title" }, title),
      h("span", { class: "latest" }, values.length === 0 ? "no data" : `${fmt(latest(series[0] as Series))} ${unit}`),
    ),
    values.length === 0 ? h("div", { class: "chart empty" }, "no samples yet") : chart,
    h(
      "div",
      { class: "chart-foot" },
      series.length > 1
        ? h(
            "span",
            { class: "legend" },
            series.map((s, i) => {
              // Set through the CSSOM: the page's CSP allows no inline style attributes.
              const swatch = h("i", { class: "swatch" });
              swatch.style.background = palette[i % palette.length] as string;
              return h("span", null, swatch, `${s.name} ${fmt(latest(s))}`);
            }),
          )
        : h("span", null, values.length === 0 ? "" : `peak ${fmt(max)} ${unit}`),
      h("span", { class: "muted" }, times.length === 0 ? "" : `${formatTime(t0)} – ${formatTime(t1)}`),
    ),
  );
}
