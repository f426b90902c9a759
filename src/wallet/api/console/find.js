// The find screen: the transactions of every user that carry one reference in their metadata
// (an order id, a store receipt), newest first, a page at a time, and any of them opened beside
// the list. Its route, #/find/KEY=VALUE, can be bookmarked and shared.
import { api } from "./api.js";
import { errorBox, h, pager, panel, table, when } from "./dom.js";
import { findRoute, transactionView } from "./transaction.js";

const PAGE_SIZE = 10;
// The service's rule for a metadata key (A-Z a-z 0-9 _ . -, 1 to 40 characters), checked in the
// form so that a typo is pointed at before anything is sent.
const KEY_PATTERN = "[A-Za-z0-9_.\\-]{1,40}";
const VALUE_LENGTH_MAX = 500;

// `reference` is the route's KEY=VALUE (or null): the key ends at the first "=", as a key has
// none, and the value is all the rest.
export function showFind(main, reference) {
  const split = (reference ?? "").indexOf("=");
  const key = split < 0 ? reference ?? "" : reference.slice(0, split);
  const value = split < 0 ? "" : reference.slice(split + 1);
  main.replaceChildren(searchForm(key, value));
  if (key && value) new FindScreen(main, key, value).load();
  else {
    main.append(h("p", { class: "hint" }, "Find by reference: the transactions of every user whose metadata has this key with this value, say order_id and A-1042."));
    main.querySelector(key ? "#find-value" : "#find-key").focus();
  }
}

function searchForm(key, value) {
  const field = (name, label, attributes) =>
    h(
      "div",
      { class: "field inline" },
      h("label", { for: `find-${name}` }, label),
      h("input", { id: `find-${name}`, name, required: true, autocomplete: "off", spellcheck: "false", ...attributes }),
    );
  const find = (event) => {
    event.preventDefault();
    const data = new FormData(event.target);
    const target = findRoute(data.get("key").trim(), data.get("value"));
    // Finding the same reference again reloads it.
    if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
    else window.location.hash = target;
  };
  return h(
    "form",
    { class: "find", role: "search", "aria-label": "Find by reference", onsubmit: find },
    field("key", "Key", { value: key, pattern: KEY_PATTERN, maxlength: 40, title: "1 to 40 letters, digits or _ . -", placeholder: "order_id" }),
    field("value", "Value", { value, maxlength: VALUE_LENGTH_MAX, placeholder: "A-1042", class: "value" }),
    h("button", { type: "submit" }, "Find"),
  );
}

class FindScreen {
  constructor(main, key, value) {
    this.key = key;
    this.value = value;
    this.cursors = [null]; // the cursor of each page seen so far: Newer goes back one
    this.results = panel("results", `Transactions with ${key} = ${value}`);
    this.detail = panel("detail", "Transaction");
    this.detailColumn = h("div", { class: "column", hidden: true }, this.detail);
    this.columns = h("div", { class: "columns results-first" }, h("div", { class: "column wide" }, this.results), this.detailColumn);
    main.append(this.columns);
  }

  async load() {
    const body = this.results.body;
    const query = { [`metadata[${this.key}]`]: this.value, limit: PAGE_SIZE, cursor: this.cursors.at(-1) };
    try {
      const page = await api.transactions(query);
      const pages = pager("Result pages", this.cursors, page.next_cursor, () => this.load(), () => this.results);
      body.replaceChildren(this.resultsTable(page.items), pages);
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  }

  resultsTable(items) {
    if (items.length === 0) return h("p", { class: "empty" }, `No transaction has ${this.key} = ${this.value}.`);
    const rows = items.map((t) => [
      when(t.created_at),
      t.user_id ? h("a", { href: `#/users/${encodeURIComponent(t.user_id)}` }, t.user_id) : "—",
      h("span", { class: `type type-${t.transaction_type}` }, t.transaction_type),
      t.asset_code,
      t.amount,
      t.description ?? "",
      h("button", { type: "button", "aria-label": `Open transaction ${t.id}`, onclick: () => this.open(t.id) }, "Open"),
    ]);
    const headings = ["When (UTC)", "User", "Type", "Asset", "Amount", "Description", ""];
    return table("Every user's, newest first", headings, rows, { numeric: [4], clipped: [5] });
  }

  async open(transactionId) {
    this.detailColumn.hidden = false;
    this.columns.classList.add("opened");
    const body = this.detail.body;
    try {
      const t = await api.transaction(transactionId);
      const route = `#/users/${encodeURIComponent(t.user_id)}/${encodeURIComponent(t.id)}`;
      const onUserScreen = t.user_id ? [h("p", { class: "go" }, h("a", { href: route }, `Open on the screen of ${t.user_id}`))] : [];
      body.replaceChildren(...transactionView(t, (id) => this.open(id)), ...onUserScreen);
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
    this.detail.heading.focus();
    this.detail.scrollIntoView({ block: "nearest" });
  }
}
