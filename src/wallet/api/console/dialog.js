// The confirmation dialog behind every write. <dialog> with showModal() keeps focus inside and
// closes on Escape; Enter in a field submits. The confirm button is disabled while the request
// is in flight, and the write's idempotency key is fixed when the dialog opens.
import { errorBox, h } from "./dom.js";

export function confirmWrite({ title, summary, fields = [], confirmLabel, write, body, done }) {
  const dialog = document.getElementById("dialog");
  const opener = document.activeElement;
  const inputs = fields.map((field) => ({ ...field, input: fieldInput(field) }));
  const confirm = h("button", { type: "submit", class: "danger" }, confirmLabel);
  const errorSlot = h("div", { class: "error-slot" });
  const form = h(
    "form",
    { class: "dialog-form", onsubmit: submit },
    h("h2", { id: "dialog-title" }, title),
    h("div", { class: "summary" }, summary),
    inputs.map(({ label, hint, input }) =>
      h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint && h("p", { class: "hint" }, hint)),
    ),
    errorSlot,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
      confirm,
    ),
  );
  dialog.replaceChildren(form);
  dialog.addEventListener("close", () => opener?.focus?.(), { once: true });
  dialog.showModal();
  (inputs[0]?.input ?? confirm).focus();

  async function submit(event) {
    event.preventDefault();
    if (confirm.disabled) return;
    confirm.disabled = true;
    confirm.setAttribute("aria-busy", "true");
    errorSlot.replaceChildren();
    const values = Object.fromEntries(inputs.map(({ name, input }) => [name, input.value.trim()]));
    try {
      const result = await write.send(body(values));
      dialog.close();
      done(result);
    } catch (error) {
      errorSlot.replaceChildren(errorBox(error));
      confirm.disabled = false;
      confirm.removeAttribute("aria-busy");
    }
  }
}

function fieldInput({ name, value = "", required = false, inputmode = "text", maxlength }) {
  return h("input", {
    id: `dialog-${name}`,
    name,
    value,
    required,
    inputmode,
    maxlength,
    autocomplete: "off",
  });
}
