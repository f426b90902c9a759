// One transaction as the console shows it, wherever it is opened (a user's screen, the find
// screen): its facts, its metadata (the caller's references, each a link to the transactions
// that share it) and its entries.
import { h, shortId, table, when } from "./dom.js";

// `open(id)` opens another transaction (the one a refund reverses) in the same place.
export function transactionView(t, open) {
  const facts = [
    ["Id", h("code", {}, t.id)],
    ["Type", t.transaction_type],
    ["When (UTC)", when(t.created_at)],
    ["User", t.user_id ?? "—"],
    ["Amount", `${t.amount} ${t.asset_code}`],
    ["Refunded", `${t.refunded_amount} ${t.asset_code}`],
    t.refund_of && ["Refund of", h("button", { type: "button", class: "link", onclick: () => open(t.refund_of) }, shortId(t.refund_of))],
    ["Description", t.description ?? "—"],
    ["Idempotency key", t.idempotency_key ?? "—"],
  ].filter(Boolean);
  const entries = table(
    "Entries",
    ["Account", "Change", "Before", "After"],
    t.entries.map((e) => [`${e.account_type} ${e.account_id}`, e.amount, e.balance_before, e.balance_after]),
    { numeric: [1, 2, 3] },
  );
  return [
    h("dl", { class: "facts" }, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
    metadataList(t.metadata ?? {}),
    entries,
  ];
}

// The hash route of the find screen for one reference: #/find/KEY=VALUE.
export function findRoute(key, value) {
  return `#/find/${encodeURIComponent(key)}=${encodeURIComponent(value)}`;
}

function metadataList(metadata) {
  const pairs = Object.entries(metadata);
  const heading = h("h3", { id: "metadata-title" }, "Metadata");
  if (pairs.length === 0) return h("div", { class: "metadata" }, heading, h("p", { class: "empty" }, "No metadata."));
  return h(
    "div",
    { class: "metadata" },
    heading,
    h(
      "dl",
      { class: "facts", "aria-labelledby": heading.id },
      pairs.map(([key, value]) => [
        h("dt", {}, h("code", {}, key)),
        h("dd", {}, value === "" ? h("span", { class: "empty" }, "(empty)") : h("a", { href: findRoute(key, value), title: `Find the transactions with ${key} = ${value}` }, value)),
      ]),
    ),
  );
}
