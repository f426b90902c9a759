// The supply screen: for one asset, its expiry policy, where its supply is (treasury, users,
// pending holds, expired), a
// chart of daily top-ups, bonuses and purchases over the last 30 days, and its daily limits.
import { api } from "./api.js";
import { barChart } from "./chart.js";
import { errorBox, h, table } from "./dom.js";
import { limitsPanel } from "./limits.js";

const DAYS = 30;
const SERIES = [
  { key: "topup", label: "Top-ups" },
  { key: "bonus", label: "Bonuses" },
  { key: "purchase", label: "Purchases" },
];

export function showSupply(main, code, assets) {
  const asset = assets.find((a) => a.code === code) ?? assets[0];
  const tabs = h(
    "nav",
    { class: "tabs", "aria-label": "Assets" },
    assets.map((a) =>
      h("a", { href: `#/supply/${a.code}`, "aria-current": a.code === asset.code ? "page" : null }, `${a.code} · ${a.name}`),
    ),
  );
  const policy = asset.expires_after_days
    ? `Its top-ups and bonuses expire ${asset.expires_after_days} days after they are made.`
    : "Its credits never expire.";
  const figures = h(
    "section",
    { class: "panel", id: "supply", "aria-labelledby": "supply-title" },
    h("h2", { id: "supply-title" }, `Supply of ${asset.name} (${asset.code})`),
    h("p", { class: "hint policy" }, policy),
  );
  const activity = h("section", { class: "panel", id: "activity", "aria-labelledby": "activity-title" }, h("h2", { id: "activity-title" }, `Daily activity, last ${DAYS} days (UTC)`));
  main.replaceChildren(tabs, figures, activity, limitsPanel(asset));
  loadSupply(figures, asset);
  loadActivity(activity, asset);
}

async function loadSupply(panel, asset) {
  try {
    const supply = await api.supply(asset.code);
    const figures = Object.entries(supply).filter(([name, value]) => name !== "asset_code" && typeof value === "string");
    panel.append(
      h("dl", { class: "figures" }, figures.map(([name, value]) => h("div", { class: "figure" }, h("dt", {}, label(name)), h("dd", {}, `${value} ${asset.code}`)))),
    );
  } catch (error) {
    if (error.code === "not_found") {
      panel.append(h("p", { class: "notice", role: "note" }, "Supply figures are not available from this server yet: it has no GET /admin/assets/{code}/supply endpoint."));
    } else {
      panel.append(errorBox(error));
    }
  }
}

async function loadActivity(panel, asset) {
  try {
    const report = await api.activity(asset.code, DAYS);
    const days = report.daily.map((d) => ({
      date: d.date,
      values: Object.fromEntries(SERIES.map(({ key }) => [key, d.activity[key].amount])),
      counts: Object.fromEntries(SERIES.map(({ key }) => [key, d.activity[key].count])),
    }));
    panel.append(
      h("ul", { class: "legend" }, SERIES.map((x) => h("li", {}, h("span", { class: `swatch bar-${x.key}`, "aria-hidden": "true" }), x.label))),
      barChart({ title: `Daily top-ups, bonuses and purchases of ${asset.code}, ${report.from} to ${report.to}`, days, series: SERIES }),
      h(
        "details",
        {},
        h("summary", {}, "Show as a table"),
        table(
          `Daily activity of ${asset.code} (amount, and count of transactions)`,
          ["Day", ...SERIES.map((x) => x.label)],
          days.map((d) => [d.date, ...SERIES.map(({ key }) => `${d.values[key]} (${d.counts[key]})`)]),
          { numeric: [1, 2, 3] },
        ),
      ),
    );
  } catch (error) {
    panel.append(errorBox(error));
  }
}

function label(name) {
  const text = name.replace(/_minor$/, "").replaceAll("_", " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}
