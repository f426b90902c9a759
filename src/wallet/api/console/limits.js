// The daily limits of one asset, on its supply screen: its limit for every user, then the users'
// overrides, a page at a time (GET /admin/limits). Read-only: limits are set through the API or
// `wallet limits set`.
import { api } from "./api.js";
import { errorBox, h, table } from "./dom.js";

const PAGE = 50;
const NONE = "no limit";

export function limitsPanel(asset) {
  const section = h(
    "section",
    { class: "panel", id: "limits", "aria-labelledby": "limits-title" },
    h("h2", { id: "limits-title" }, `Daily limits of ${asset.code} (per user, per UTC day)`),
  );
  loadLimits(section, asset, null);
  return section;
}

async function loadLimits(section, asset, cursor) {
  try {
    const page = await api.limits({ asset_code: asset.code, limit: PAGE, ...(cursor ? { cursor } : {}) });
    section.querySelector(".more")?.remove();
    if (!cursor) section.append(everyone(page.items, asset));
    const overrides = page.items.filter((item) => item.user_id !== null);
    if (overrides.length) {
      let rows = section.querySelector("#limit-overrides tbody");
      if (!rows) {
        section.append(
          h("div", { id: "limit-overrides" }, table(`Users' overrides of ${asset.code}'s limit`, ["User", "May spend", "May receive", "Set"], [], { numeric: [1, 2] })),
        );
        rows = section.querySelector("#limit-overrides tbody");
      }
      for (const item of overrides) {
        rows.append(h("tr", {}, h("td", {}, h("a", { href: `#/users/${encodeURIComponent(item.user_id)}` }, item.user_id)), h("td", { class: "num" }, amount(item.debit_per_day, asset)), h("td", { class: "num" }, amount(item.credit_per_day, asset)), h("td", {}, item.updated_at)));
      }
    } else if (!cursor) {
      section.append(h("p", { class: "empty" }, "No user has an override."));
    }
    if (page.next_cursor) {
      section.append(h("button", { type: "button", class: "more", onclick: () => loadLimits(section, asset, page.next_cursor) }, "Show more overrides"));
    }
  } catch (error) {
    section.append(errorBox(error));
  }
}

function everyone(items, asset) {
  const limit = items.find((item) => item.user_id === null);
  return h(
    "dl",
    { class: "figures", id: "limit-everyone" },
    h("div", { class: "figure" }, h("dt", {}, "Every user may spend"), h("dd", {}, limit ? amount(limit.debit_per_day, asset) : NONE)),
    h("div", { class: "figure" }, h("dt", {}, "Every user may receive"), h("dd", {}, limit ? amount(limit.credit_per_day, asset) : NONE)),
  );
}

function amount(value, asset) {
  return value === null ? NONE : `${value} ${asset.code}`;
}
