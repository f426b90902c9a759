// Small DOM helpers. Text always goes in as text nodes, never as HTML: descriptions and ids come
// from players and game servers.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : value);
  }
  element.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return element;
}

// Columns listed in `clipped` hold free text (descriptions): their cells, heading included,
// stay one line high, cut with an ellipsis, and carry the full text in their title.
export function table(caption, headings, rows, { numeric = [], clipped = [] } = {}) {
  const cell = (tag, content, index) => {
    if (clipped.includes(index)) return h(tag, { class: "clip", title: content || null }, content);
    return h(tag, { class: numeric.includes(index) ? "num" : null }, content);
  };
  return h(
    "table",
    {},
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, headings.map((text, i) => cell("th", text, i)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, row.map((content, i) => cell("td", content, i))))),
  );
}

// A titled panel of a screen; `heading` takes the focus when the panel opens, `body` its content.
export function panel(id, title) {
  const heading = h("h2", { id: `${id}-title`, tabindex: "-1" }, title);
  const body = h("div", {});
  const element = h("section", { id, class: "panel", "aria-labelledby": heading.id }, heading, body);
  return Object.assign(element, { heading, body });
}

export function errorBox(error) {
  return h("p", { class: "error", role: "alert" }, error.message);
}

export function status(message) {
  const box = document.getElementById("status");
  box.textContent = message;
  box.classList.toggle("visible", Boolean(message));
}

export function when(isoTime) {
  return isoTime.replace("T", " ").replace(/\.\d+Z$/, "");
}

export function shortId(id) {
  return id.length > 13 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id;
}

// Newer and Older buttons over pages read with cursors: `cursors` holds the cursor of each page
// seen so far (null for the first), so Newer goes back one and Older follows next_cursor.
// `load()` reads the page of the last cursor again; `area` is where the pager is drawn.
export function pager(label, cursors, nextCursor, load, area) {
  const go = (which, move) => {
    move();
    load().then(() => focusPager(area(), which));
  };
  return h(
    "nav",
    { class: "pager", "aria-label": label },
    h("button", { type: "button", "data-page": "newer", disabled: cursors.length === 1, onclick: () => go("newer", () => cursors.pop()) }, "← Newer"),
    h("span", { class: "page-number" }, `Page ${cursors.length}`),
    h("button", { type: "button", "data-page": "older", disabled: !nextCursor, onclick: () => go("older", () => cursors.push(nextCursor)) }, "Older →"),
  );
}

// After a page turn the button pressed keeps the focus, or, on the first or last page where it
// is disabled, the other one.
function focusPager(area, which) {
  const button = area.querySelector(`[data-page="${which}"]`);
  (button?.disabled ? area.querySelector(".pager button:not([disabled])") : button)?.focus();
}
