// The events screen: the feed, PAGE_SIZE events at a time after a position (by default the
// newest page; #/events/<after> for another), each transaction linked to the user screen opened
// on it; and the webhook endpoints, each with its lag behind the feed and its failure, a switch to
// disable or enable it (behind the confirmation dialog) and its latest delivery attempts.
import { api } from "./api.js";
import { confirmWrite } from "./dialog.js";
import { errorBox, h, panel, shortId, status, table, when } from "./dom.js";
import { newestPosition } from "./feed.js";

const PAGE_SIZE = 50;
const POSITION_PATTERN = /^\d{1,15}$/;

// `after` is the route's position (or null for the newest page).
export function showEvents(main, after) {
  new EventsScreen(main, POSITION_PATTERN.test(after ?? "") ? Number(after) : null).load();
}

class EventsScreen {
  constructor(main, after) {
    this.after = after; // null: the newest page
    this.newest = null; // the newest position, read with the endpoints
    this.feed = panel("feed", "Events");
    this.webhooks = panel("webhooks", "Webhook endpoints");
    this.attempts = panel("attempts", "Delivery attempts");
    this.attempts.hidden = true;
    this.feedArea = h("div", {});
    this.feed.body.append(this.positionForm(), this.feedArea);
    this.hooksArea = h("div", {});
    const refresh = h("button", { type: "button", onclick: () => this.refreshWebhooks() }, "Refresh");
    this.webhooks.body.append(h("div", { class: "filters" }, refresh), this.hooksArea);
    // The endpoints first: a few rows, above a page of events.
    main.replaceChildren(this.webhooks, this.attempts, this.feed);
  }

  async load() {
    await this.refreshWebhooks();
    await this.loadEvents();
    if (this.after === null) this.feed.querySelector("#events-after").focus();
  }

  positionForm() {
    this.positionInput = h("input", { id: "events-after", name: "after", type: "number", min: 0, step: 1, required: true, autocomplete: "off" });
    const show = (event) => {
      event.preventDefault();
      this.go(Number(this.positionInput.value));
    };
    return h(
      "form",
      { class: "filters", role: "search", "aria-label": "Events after a position", onsubmit: show },
      h("div", { class: "field inline" }, h("label", { for: "events-after" }, "After position"), this.positionInput),
      h("button", { type: "submit" }, "Show"),
      h("button", { type: "button", onclick: () => this.go(null) }, "Newest"),
    );
  }

  // Another page of the feed, in place; the address follows, so the page can be bookmarked.
  async go(after) {
    this.after = after;
    window.history.replaceState(null, "", after === null ? "#/events" : `#/events/${after}`);
    if (after === null) await this.refreshWebhooks();
    await this.loadEvents();
  }

  async loadEvents() {
    const area = this.feedArea;
    if (this.after === null && this.newest === null) return; // the newest page, and no newest position: its error is shown
    const after = this.after ?? Math.max(this.newest - PAGE_SIZE, 0);
    this.positionInput.value = after;
    try {
      const page = await api.events({ after, limit: PAGE_SIZE });
      area.replaceChildren(this.eventsTable(page.items, after), this.pager(after, page));
    } catch (error) {
      area.replaceChildren(errorBox(error));
    }
  }

  eventsTable(items, after) {
    if (items.length === 0) return h("p", { class: "empty" }, `No event after position ${after}.`);
    const rows = items.map((event) => [String(event.position), when(event.created_at), h("span", { class: "type" }, event.type), ...describe(event)]);
    const headings = ["Position", "When (UTC)", "Type", "What", "User", "Amount", "Transaction"];
    return table(`Events after position ${after}, oldest first`, headings, rows, { numeric: [0, 5] });
  }

  // Older and Newer move by a page; Newer until the page reaches the newest position known (the
  // Newest button reads it again).
  pager(after, page) {
    const last = page.items.length < PAGE_SIZE || (this.newest !== null && page.next_after >= this.newest);
    const move = (which, to) => this.go(to).then(() => this.feed.querySelector(`[data-page="${which}"]`)?.focus());
    return h(
      "nav",
      { class: "pager", "aria-label": "Event pages" },
      h("button", { type: "button", "data-page": "older", disabled: after === 0, onclick: () => move("older", Math.max(after - PAGE_SIZE, 0)) }, "← Older"),
      h("button", { type: "button", "data-page": "newer", disabled: last, onclick: () => move("newer", page.next_after) }, "Newer →"),
    );
  }

  // The endpoints are read before the newest position, so that no lag shows below zero.
  async refreshWebhooks() {
    let endpoints;
    try {
      endpoints = await api.webhooks();
    } catch (error) {
      endpoints = error;
    }
    try {
      this.newest = await newestPosition();
    } catch (error) {
      this.newest = null;
      this.feedArea.replaceChildren(errorBox(error));
    }
    if (endpoints instanceof Error) this.hooksArea.replaceChildren(errorBox(endpoints));
    else this.hooksArea.replaceChildren(this.webhooksTable(endpoints.items));
  }

  webhooksTable(endpoints) {
    if (endpoints.length === 0) return h("p", { class: "empty" }, "No webhook endpoint.");
    const rows = endpoints.map((endpoint) => [
      h("span", { class: "url", title: endpoint.url }, endpoint.url),
      endpoint.event_types.join(", "),
      h("span", { class: `state state-${endpoint.status}` }, endpoint.status),
      this.lag(endpoint),
      endpoint.failing_since ? when(endpoint.failing_since) : "—",
      endpoint.last_error ?? "",
      h(
        "span",
        { class: "row-actions" },
        h("button", { type: "button", "data-toggle": endpoint.id, "aria-label": `${toggleLabel(endpoint)} ${endpoint.url}`, onclick: () => this.toggle(endpoint) }, `${toggleLabel(endpoint)}…`),
        h("button", { type: "button", "aria-label": `Attempts of ${endpoint.url}`, onclick: () => this.showAttempts(endpoint) }, "Attempts"),
      ),
    ]);
    const newest = this.newest === null ? "" : ` (newest event: ${this.newest})`;
    const headings = ["URL", "Event types", "Status", "Lag (positions)", "Failing since (UTC)", "Last error", "Actions"];
    return table(`Lag: how many positions each endpoint is behind the newest event${newest}`, headings, rows, { numeric: [3], clipped: [5] });
  }

  lag(endpoint) {
    if (this.newest === null || endpoint.last_delivered_position === null) return "—";
    return String(this.newest - endpoint.last_delivered_position);
  }

  toggle(endpoint) {
    const disabling = endpoint.status === "enabled";
    const summary = disabling
      ? `No event goes to ${endpoint.url} while it is disabled; enabled again, it resumes where it stopped.`
      : `Deliveries to ${endpoint.url} resume after position ${endpoint.last_delivered_position ?? "of its creation"}, ${this.lag(endpoint)} positions behind.`;
    confirmWrite({
      title: `${toggleLabel(endpoint)} a webhook endpoint`,
      summary: h("p", {}, summary),
      confirmLabel: toggleLabel(endpoint),
      write: api.setWebhookStatus(endpoint.id),
      body: () => ({ status: disabling ? "disabled" : "enabled" }),
      done: async (changed) => {
        status(`${changed.url} is ${changed.status}.`);
        await this.refreshWebhooks();
        this.hooksArea.querySelector(`[data-toggle="${CSS.escape(endpoint.id)}"]`)?.focus();
      },
    });
  }

  async showAttempts(endpoint) {
    this.attempts.hidden = false;
    this.attempts.heading.textContent = `Delivery attempts to ${endpoint.url}`;
    const body = this.attempts.body;
    try {
      const { items } = await api.webhookAttempts(endpoint.id);
      body.replaceChildren(attemptsTable(items));
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
    this.attempts.heading.focus();
    this.attempts.scrollIntoView({ block: "nearest" });
  }
}

function toggleLabel(endpoint) {
  return endpoint.status === "enabled" ? "Disable" : "Enable";
}

// What, who, how much and which transaction an event is about, by its type's data.
function describe(event) {
  const data = event.data;
  const user = data.user_id ? h("a", { href: `#/users/${encodeURIComponent(data.user_id)}` }, data.user_id) : "—";
  const amount = data.amount ? `${data.amount} ${data.asset_code}` : data.balance ? `${data.balance} ${data.asset_code}` : "";
  if (event.type === "transaction.created") {
    const what = h("span", { class: `type type-${data.transaction_type}` }, data.transaction_type);
    return [what, user, amount, transactionLink(data)];
  }
  if (event.type.startsWith("hold.")) return [h("code", { title: data.id }, `hold ${shortId(data.id)}`), user, amount, ""];
  if (event.type === "balance.threshold_crossed") return [`${data.condition} ${data.threshold}`, user, amount, ""];
  return [data.reason ?? "", user, amount, ""];
}

// A user's transaction opens on the user's screen; the system's own (an issuance) has none.
function transactionLink(t) {
  if (!t.user_id) return h("code", { title: t.id }, shortId(t.id));
  const route = `#/users/${encodeURIComponent(t.user_id)}/${encodeURIComponent(t.id)}`;
  return h("a", { href: route, title: t.id, "aria-label": `Transaction ${t.id}` }, shortId(t.id));
}

function attemptsTable(attempts) {
  if (attempts.length === 0) return h("p", { class: "empty" }, "No delivery attempted yet.");
  const rows = attempts.map((a) => [
    when(a.attempted_at),
    String(a.position),
    h("code", { title: a.event_id }, shortId(a.event_id)),
    a.status_code === null ? "—" : String(a.status_code),
    a.error ?? "",
    `${a.duration_ms} ms`,
  ]);
  return table("Latest first", ["When (UTC)", "Position", "Event", "Status", "Error", "Duration"], rows, { numeric: [1, 5], clipped: [4] });
}
