// A grouped bar chart of daily amounts as inline SVG: one group per day, one bar per series,
// with a y axis, a date every few days, a legend, and a title on every bar for its exact value.
const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 900;
const HEIGHT = 280;
const MARGIN = { top: 16, right: 12, bottom: 36, left: 84 };

function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  element.append(...children);
  return element;
}

// days: [{date, values: {key: "12.50"}}]; series: [{key, label}]. Amounts are strings; they
// become numbers only to place the bars.
export function barChart({ title, days, series }) {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const top = niceCeiling(Math.max(0, ...days.flatMap((d) => series.map((x) => Number(d.values[x.key])))));
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;
  const band = plotWidth / days.length;
  const barWidth = Math.max(1, (band * 0.8) / series.length);
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: "img", "aria-labelledby": "chart-title", class: "chart" });
  svg.append(s("title", { id: "chart-title" }, title));
  for (const fraction of [0, 0.25, 0.5, 0.75, 1]) {
    const value = top * fraction;
    svg.append(
      s("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value), class: "grid" }),
      s("text", { x: MARGIN.left - 8, y: y(value) + 4, class: "axis", "text-anchor": "end" }, formatTick(value)),
    );
  }
  days.forEach((day, index) => {
    const left = MARGIN.left + index * band + band * 0.1;
    series.forEach((item, position) => {
      const value = Number(day.values[item.key]);
      const bar = s("rect", {
        x: left + position * barWidth,
        y: y(value),
        width: barWidth,
        height: Math.max(0, MARGIN.top + plotHeight - y(value)),
        class: `bar bar-${item.key}`,
      });
      bar.append(s("title", {}, `${day.date} ${item.label}: ${day.values[item.key]}`));
      svg.append(bar);
    });
    if (index % 5 === 0 || index === days.length - 1) {
      const x = MARGIN.left + index * band + band / 2;
      svg.append(s("text", { x, y: HEIGHT - 14, class: "axis", "text-anchor": "middle" }, day.date.slice(5)));
    }
  });
  return svg;
}

// 0 → 1; otherwise the next of 1, 2, 2.5, 5 × 10^n at or above the value.
function niceCeiling(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 2.5, 5, 10].map((step) => step * power).find((candidate) => candidate >= value);
}

function formatTick(value) {
  return value.toLocaleString("en-US", { maximumFractionDigits: 2 });
}
