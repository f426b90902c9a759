// The console's entry: sign in with an API key, then route #/users/<id>[/<transaction id>],
// #/find/<key>=<value>, #/supply/<code> and #/events[/<position>].
import { api, session } from "./api.js";
import { errorBox, h, status } from "./dom.js";
import { showEvents } from "./events.js";
import { showFind } from "./find.js";
import { showSupply } from "./supply.js";
import { showUsers } from "./user.js";

const main = document.getElementById("main");
let assets = null;

function signInForm(problem) {
  const input = h("input", { id: "api-key", name: "api_key", type: "password", required: true, autocomplete: "off", spellcheck: "false" });
  const button = h("button", { type: "submit" }, "Sign in");
  const slot = h("div", {}, problem && errorBox(problem));
  const submit = async (event) => {
    event.preventDefault();
    button.disabled = true;
    session.signIn(input.value.trim());
    try {
      assets = await api.assets();
      await route();
    } catch (error) {
      session.signOut();
      slot.replaceChildren(errorBox(error));
      button.disabled = false;
      input.focus();
    }
  };
  return h(
    "form",
    { class: "panel sign-in", onsubmit: submit, "aria-labelledby": "sign-in-title" },
    h("h2", { id: "sign-in-title" }, "Sign in"),
    h("p", {}, "Paste an API key (wallet keys create). Looking things up needs the read scope, refunds and holds the write scope, supply, activity and webhooks the admin scope. The key is kept in this tab only."),
    h("div", { class: "field" }, h("label", { for: "api-key" }, "API key"), input),
    slot,
    h("div", { class: "actions" }, button),
  );
}

function showSignIn(problem) {
  setSignedIn(false);
  main.replaceChildren(signInForm(problem));
  main.querySelector("#api-key").focus();
}

function setSignedIn(signedIn) {
  document.getElementById("nav").hidden = !signedIn;
  document.getElementById("who").hidden = !signedIn;
  const key = session.key ?? "";
  document.getElementById("who-key").textContent = signedIn ? `Key ${key.slice(0, 15)}…` : "";
}

async function route() {
  if (!session.key) return showSignIn();
  try {
    assets ??= await api.assets();
  } catch (error) {
    session.signOut();
    return showSignIn(error);
  }
  setSignedIn(true);
  const [screen, argument, detail] = window.location.hash.replace(/^#\/?/, "").split("/");
  const value = argument ? decodeURIComponent(argument) : null;
  for (const link of document.querySelectorAll("#nav a")) {
    if (link.getAttribute("href") === `#/${screen || "users"}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (screen === "supply") showSupply(main, value, assets);
  else if (screen === "find") showFind(main, value);
  else if (screen === "events") showEvents(main, value);
  else showUsers(main, value, assets, detail ? decodeURIComponent(detail) : null);
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  assets = null;
  status("");
  showSignIn();
});
window.addEventListener("hashchange", () => {
  status("");
  route();
});
route();
