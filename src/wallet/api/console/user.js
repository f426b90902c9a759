// The user screen: find a user; balances with what is held and whether frozen; the credits that
// expire (each asset's open lots, and what expires in the next 30 days); the freezes in
// force and the freeze log (freeze, unfreeze); pending holds (capture, release); the history a
// page at a time with filters; one transaction's entries and metadata, and its refund. #/users/<id>/<transaction id> opens the screen on that transaction.
import { api, transactionKinds } from "./api.js";
import { confirmWrite } from "./dialog.js";
import { errorBox, h, pager, panel, shortId, status, table, when } from "./dom.js";
import { transactionView } from "./transaction.js";

const PAGE_SIZE = 10;
const FREEZE_LOG_SIZE = 20;
// Credits that expire: the lots shown per asset, the horizon of "expires soon", and how many
// lots are read at most to add up what expires within it (lots come soonest first, so the
// reading stops at the first lot beyond the horizon).
const LOTS_SHOWN = 10;
const EXPIRING_DAYS = 30;
const LOT_PAGE_SIZE = 500;
const LOT_PAGES_MAX = 4;
const DAY_MS = 86_400_000;
const REFUNDABLE = new Set(["topup", "bonus", "purchase"]);

export function showUsers(main, userId, assets, transactionId) {
  main.replaceChildren(findForm(userId));
  if (userId) new UserScreen(main, userId, assets).load(transactionId);
  else main.querySelector("#user-id").focus();
}

function findForm(userId) {
  const input = h("input", {
    id: "user-id",
    name: "user_id",
    value: userId ?? "",
    required: true,
    autocomplete: "off",
    spellcheck: "false",
    pattern: "[A-Za-z0-9._:@\\-]{1,128}",
    title: "1 to 128 letters, digits or . _ : @ -",
  });
  const find = (event) => {
    event.preventDefault();
    const target = `#/users/${encodeURIComponent(input.value.trim())}`;
    // Finding the user on screen again reloads it.
    if (window.location.hash === target) window.dispatchEvent(new HashChangeEvent("hashchange"));
    else window.location.hash = target;
  };
  return h(
    "form",
    { class: "find", role: "search", onsubmit: find },
    h("label", { for: "user-id" }, "User id"),
    input,
    h("button", { type: "submit" }, "Find"),
  );
}

class UserScreen {
  constructor(main, userId, assets) {
    this.userId = userId;
    this.assets = assets;
    this.filters = { asset_code: "", transaction_type: "" };
    this.cursors = [null]; // the cursor of each page seen so far: Newer goes back one
    this.opened = null;
    this.balances = panel("balances", "Balances");
    this.lots = panel("lots", "Credits that expire");
    this.freezes = panel("freezes", "Freezes");
    this.holds = panel("holds", "Pending holds");
    this.detail = panel("detail", "Transaction");
    this.history = panel("history", "History");
    this.detail.hidden = true;
    main.append(
      h(
        "div",
        { class: "columns" },
        h("div", { class: "column" }, this.balances, this.lots, this.freezes, this.detail),
        h("div", { class: "column wide" }, this.holds, this.history),
      ),
    );
  }

  async load(transactionId) {
    this.kinds = await transactionKinds();
    const found = await this.loadBalances();
    if (found) await Promise.all([this.loadFreezes(), this.loadHolds(), this.loadHistory()]);
    if (found && transactionId) await this.open(transactionId);
  }

  async refresh() {
    await Promise.all([this.loadBalances(), this.loadFreezes(), this.loadHolds(), this.loadHistory()]);
    if (this.opened) await this.open(this.opened, { focus: false });
  }

  async loadBalances() {
    const body = this.balances.body;
    try {
      const { balances } = await api.balances(this.userId);
      this.loadLots(balances);
      body.replaceChildren(
        table(
          `Balances of ${this.userId}`,
          ["Asset", "Balance", "Held", "State"],
          balances.map((b) => [
            b.asset_code,
            b.balance,
            b.held ?? "—",
            b.frozen ? h("span", { class: "frozen" }, "frozen") : "active",
          ]),
          { numeric: [1, 2] },
        ),
      );
      return true;
    } catch (error) {
      body.replaceChildren(errorBox(error));
      this.lots.hidden = this.freezes.hidden = this.holds.hidden = this.history.hidden = true;
      return false;
    }
  }

  // Each asset whose balance has lots (its `expiring` is not empty): what expires in the next
  // EXPIRING_DAYS days, and the lots that expire soonest.
  async loadLots(balances) {
    const body = this.lots.body;
    const withLots = balances.filter((b) => b.expiring?.length);
    if (withLots.length === 0) {
      body.replaceChildren(h("p", { class: "empty" }, "No credits that expire."));
      return;
    }
    try {
      const horizonMs = Date.now() + EXPIRING_DAYS * DAY_MS;
      const sections = await Promise.all(withLots.map((b) => this.lotsOf(b.asset_code, horizonMs)));
      body.replaceChildren(...sections.flat());
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  }

  async lotsOf(asset, horizonMs) {
    const lots = [];
    let cursor = null;
    let pages = 0;
    let more = false;
    do {
      const page = await api.lots(this.userId, asset, { limit: LOT_PAGE_SIZE, cursor });
      lots.push(...page.items);
      cursor = page.next_cursor;
      pages += 1;
      more = cursor !== null;
    } while (more && pages < LOT_PAGES_MAX && Date.parse(lots.at(-1).expires_at) <= horizonMs);
    const soon = lots.filter((lot) => Date.parse(lot.expires_at) <= horizonMs);
    // Read up to the cap and every lot read is within the horizon: there may be more.
    const atLeast = more && soon.length === lots.length ? "at least " : "";
    const due = soon.length
      ? `${atLeast}${sum(soon.map((lot) => lot.remaining))} ${asset} expire in the next ${EXPIRING_DAYS} days.`
      : `Nothing of ${asset} expires in the next ${EXPIRING_DAYS} days.`;
    const shown = lots.slice(0, LOTS_SHOWN);
    const rows = shown.map((lot) => [
      when(lot.expires_at),
      lot.remaining,
      lot.amount,
      h(
        "button",
        { type: "button", "aria-label": `Open transaction ${lot.transaction_id}`, onclick: () => this.open(lot.transaction_id) },
        "Open",
      ),
    ]);
    const count = more ? `${lots.length}+` : `${lots.length}`;
    return [
      h("p", { class: "expiring-soon", "data-asset": asset }, due),
      table(`Open lots of ${this.userId} in ${asset}, soonest first`, ["Expires (UTC)", "Remaining", "Amount", "Credit"], rows, {
        numeric: [1, 2],
      }),
      lots.length > LOTS_SHOWN ? h("p", { class: "hint" }, `The ${LOTS_SHOWN} that expire soonest of ${count} open lots.`) : null,
    ].filter(Boolean);
  }

  async loadFreezes() {
    const body = this.freezes.body;
    const freezeButton = h("button", { type: "button", class: "danger", onclick: () => this.freeze() }, "Freeze…");
    try {
      const { in_force: inForce, log } = await api.freezes(this.userId, FREEZE_LOG_SIZE);
      const scope = (code) => code ?? "all assets";
      const current = inForce.length
        ? table(
            `Freezes in force of ${this.userId}`,
            ["Asset", "Reason", "By", "Since (UTC)", ""],
            inForce.map((f) => [
              scope(f.asset_code),
              f.reason,
              f.frozen_by,
              when(f.frozen_at),
              h("button", { type: "button", onclick: () => this.unfreeze(f) }, "Unfreeze…"),
            ]),
            { clipped: [1] },
          )
        : h("p", { class: "empty" }, "Not frozen.");
      const history = log.length
        ? table(
            `Freeze log of ${this.userId}, newest ${FREEZE_LOG_SIZE} first`,
            ["When (UTC)", "Action", "Asset", "Reason", "By"],
            log.map((e) => [when(e.at), e.action, scope(e.asset_code), e.reason, e.actor]),
            { clipped: [3] },
          )
        : h("p", { class: "empty" }, "Never frozen.");
      body.replaceChildren(current, freezeButton, history);
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  }

  freeze() {
    confirmWrite({
      title: "Freeze an account",
      summary: h(
        "p",
        {},
        `Every top-up, bonus, purchase, refund, hold and capture of ${this.userId}'s account will be refused until it is unfrozen. Hold expiry and releases go on.`,
      ),
      fields: [
        { name: "reason", label: "Reason", required: true, maxlength: 500, hint: "Kept in the freeze log, with your key and the time." },
        { name: "asset_code", label: "Asset (optional)", maxlength: 10, hint: `Empty: all of the user's assets. Assets: ${this.assets.map((a) => a.code).join(", ")}.` },
      ],
      confirmLabel: "Freeze",
      write: api.freeze(this.userId),
      body: ({ reason, asset_code: asset }) => ({ reason, ...(asset ? { asset_code: asset } : {}) }),
      done: (freeze) => this.wrote(`Froze ${this.userId}'s ${freeze.asset_code ?? "every"} account: ${freeze.reason}.`),
    });
  }

  unfreeze(freeze) {
    const account = freeze.asset_code ? `${freeze.asset_code} account` : "accounts in all assets";
    confirmWrite({
      title: "Unfreeze an account",
      summary: h("p", {}, `Lift the freeze of ${this.userId}'s ${account} (${freeze.reason}).`),
      fields: [{ name: "reason", label: "Reason (optional)", maxlength: 500 }],
      confirmLabel: "Unfreeze",
      write: api.unfreeze(this.userId),
      body: ({ reason }) => ({
        ...(freeze.asset_code ? { asset_code: freeze.asset_code } : {}),
        ...(reason ? { reason } : {}),
      }),
      done: () => this.wrote(`Unfroze ${this.userId}'s ${account}.`),
    });
  }

  async loadHolds() {
    const body = this.holds.body;
    try {
      const { items } = await api.pendingHolds(this.userId);
      if (items.length === 0) {
        body.replaceChildren(h("p", { class: "empty" }, "No pending holds."));
        return;
      }
      const rows = items.map((hold) => [
        h("code", { title: hold.id }, shortId(hold.id)),
        `${hold.amount} ${hold.asset_code}`,
        when(hold.expires_at),
        hold.description ?? "",
        h(
          "span",
          { class: "row-actions" },
          h("button", { type: "button", onclick: () => this.capture(hold) }, "Capture…"),
          h("button", { type: "button", onclick: () => this.release(hold) }, "Release…"),
        ),
      ]);
      body.replaceChildren(
        table(`Pending holds of ${this.userId}`, ["Hold", "Amount", "Expires (UTC)", "Description", "Actions"], rows, {
          numeric: [1],
          clipped: [3],
        }),
      );
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
  }

  async loadHistory() {
    const body = this.history.body;
    const query = { limit: PAGE_SIZE, cursor: this.cursors.at(-1), ...this.filters };
    try {
      const page = await api.history(this.userId, query);
      const pages = pager("History pages", this.cursors, page.next_cursor, () => this.loadHistory(), () => this.history);
      body.replaceChildren(this.filterForm(), this.historyTable(page.items), pages);
    } catch (error) {
      body.replaceChildren(this.filterForm(), errorBox(error));
    }
  }

  filterForm() {
    const select = (name, label, options) =>
      h(
        "div",
        { class: "field inline" },
        h("label", { for: `filter-${name}` }, label),
        h(
          "select",
          { id: `filter-${name}`, name },
          h("option", { value: "" }, "All"),
          options.map((value) => h("option", { value, selected: this.filters[name] === value }, value)),
        ),
      );
    const apply = (event) => {
      event.preventDefault();
      const data = new FormData(event.target);
      this.filters = { asset_code: data.get("asset_code"), transaction_type: data.get("transaction_type") };
      this.cursors = [null];
      this.loadHistory().then(() => this.history.querySelector("#filter-asset_code").focus());
    };
    return h(
      "form",
      { class: "filters", onsubmit: apply },
      select("asset_code", "Asset", this.assets.map((a) => a.code)),
      select("transaction_type", "Type", this.kinds),
      h("button", { type: "submit" }, "Apply filters"),
    );
  }

  historyTable(items) {
    if (items.length === 0) return h("p", { class: "empty" }, "No transactions.");
    const rows = items.map((t) => [
      when(t.created_at),
      h("span", { class: `type type-${t.transaction_type}` }, t.transaction_type),
      t.asset_code,
      t.amount,
      t.balance_after ?? "—",
      t.refunded_amount === "0.00" || !t.refunded_amount ? "" : t.refunded_amount,
      t.description ?? "",
      h(
        "button",
        { type: "button", "aria-label": `Open transaction ${t.id}`, onclick: () => this.open(t.id) },
        "Open",
      ),
    ]);
    const headings = ["When (UTC)", "Type", "Asset", "Amount", "Balance after", "Refunded", "Description", ""];
    return table(`History of ${this.userId}, newest first`, headings, rows, { numeric: [3, 4, 5], clipped: [6] });
  }

  async open(transactionId, { focus = true } = {}) {
    this.opened = transactionId;
    this.detail.hidden = false;
    const body = this.detail.body;
    try {
      const t = await api.transaction(transactionId);
      body.replaceChildren(...this.transactionView(t));
    } catch (error) {
      body.replaceChildren(errorBox(error));
    }
    if (focus) {
      this.detail.heading.focus();
      this.detail.scrollIntoView({ block: "nearest" });
    }
  }

  transactionView(t) {
    const left = minus(t.amount, t.refunded_amount);
    const canRefund = REFUNDABLE.has(t.transaction_type) && !/^0(\.0*)?$/.test(left);
    const refund = h("button", { type: "button", class: "danger", onclick: () => this.refund(t, left) }, "Refund…");
    return [...transactionView(t, (id) => this.open(id)), ...(canRefund ? [refund] : [])];
  }

  refund(t, left) {
    confirmWrite({
      title: "Refund a transaction",
      summary: h(
        "p",
        {},
        `${t.transaction_type} of ${t.amount} ${t.asset_code} for ${t.user_id}, ${when(t.created_at)} UTC. `,
        `Refunded so far: ${t.refunded_amount} ${t.asset_code}.`,
      ),
      fields: [
        { name: "amount", label: `Amount to refund (${t.asset_code})`, value: left, required: true, inputmode: "decimal", hint: `At most ${left} ${t.asset_code}, what is left to refund.` },
        { name: "description", label: "Reason (optional)", maxlength: 500 },
      ],
      confirmLabel: "Refund",
      write: api.refund(),
      body: ({ amount, description }) => ({
        transaction_type: "refund",
        refund_of: t.id,
        amount,
        ...(description ? { description } : {}),
      }),
      done: (refund) => this.wrote(`Refunded ${refund.amount} ${refund.asset_code} of transaction ${shortId(t.id)}.`),
    });
  }

  capture(hold) {
    confirmWrite({
      title: "Capture a hold",
      summary: h("p", {}, `Hold ${shortId(hold.id)}: ${hold.amount} ${hold.asset_code} of ${hold.user_id}. What is not captured goes back to the user.`),
      fields: [
        { name: "amount", label: `Amount to capture (${hold.asset_code})`, value: hold.amount, required: true, inputmode: "decimal", hint: `At most ${hold.amount} ${hold.asset_code}.` },
      ],
      confirmLabel: "Capture",
      write: api.capture(hold.id),
      body: ({ amount }) => ({ amount }),
      done: (settled) => this.wrote(`Captured ${settled.captured_amount} ${settled.asset_code} of hold ${shortId(hold.id)}.`),
    });
  }

  release(hold) {
    confirmWrite({
      title: "Release a hold",
      summary: h("p", {}, `Hold ${shortId(hold.id)}: all of its ${hold.amount} ${hold.asset_code} go back to ${hold.user_id}.`),
      confirmLabel: "Release",
      write: api.release(hold.id),
      body: () => ({}),
      done: () => this.wrote(`Released hold ${shortId(hold.id)}: ${hold.amount} ${hold.asset_code} back to ${hold.user_id}.`),
    });
  }

  async wrote(message) {
    status(message);
    await this.refresh();
  }
}

// The sum of decimal strings of one scale, exactly (no float touches an amount).
function sum(amounts) {
  return amounts.reduce((total, amount) => minus(total, `-${amount}`));
}

// a - b for two decimal strings of the same scale, exactly (no float touches an amount).
function minus(a, b) {
  const scale = (a.split(".")[1] ?? "").length;
  const difference = BigInt(a.replace(".", "")) - BigInt(b.replace(".", ""));
  const digits = (difference < 0n ? -difference : difference).toString().padStart(scale + 1, "0");
  const text = scale ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return difference < 0n ? `-${text}` : text;
}
